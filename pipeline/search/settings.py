"""How to search: the engine's own settings (the `search:` section of params.yaml, less
what only a particular problem understands). Validated like every section: strict types,
ranges and choices with one-line messages, and a JSON Schema for editors."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from pipeline.search.backends import BACKENDS, available_cores
from pipeline.search.strategies import STRATEGIES
from pipeline.search.strategies.base import describe_knobs, options_model
from pipeline.validation import Between, Number, OneOf, Section, fail, listed, one_line

#: Settings that choose where candidates run, never what they compute.
RUNTIME_KEYS = ("backend", "workers", "ray_address", "gpus_per_trial")

#: Keys that were settings of their own and are now knobs in `search.options`.
MOVED_TO_OPTIONS = {"crossover": "ga, nsga2", "mutation": "ga, nsga2", "gene_mutation": "ga, nsga2, aging, surrogate",
                    "tournament": "ga, nsga2, aging, surrogate"}

OPTIONS_HELP = "the strategy's own knobs (name: value), checked against its constructor; " + "; ".join(
    f"{name}: {describe_knobs(cls)}" for name, cls in STRATEGIES.items())


class FidelitySettings(Section):
    """Successive halving: train everyone for rungs[0], the best 1/eta for rungs[1], ..."""

    rungs: listed(Annotated[Number, Between(0.001, 100_000)], "a list of numbers (epoch budgets)", unique=False) = Field(
        (), description="epoch budgets, increasing (a fraction trains that share of the training images); "
                        "empty = off (every candidate gets search.epochs)")
    eta: Annotated[int, Between(2, 100)] = Field(3, description="keep the best 1/eta at each rung")
    mode: Annotated[str, OneOf(("continue", "restart"))] = Field(
        "continue", description="continue: a promoted candidate resumes its training under one schedule over the top "
                                "rung; restart: every rung trains from scratch")
    brackets: Annotated[str, OneOf(("ladder", "hyperband"))] = Field(
        "ladder", description="ladder: every generation starts at the first rung; hyperband: generation g starts at "
                              "rung g mod len(rungs), with 1/eta^start of its proposals")

    @model_validator(mode="before")
    @classmethod
    def _empty_rungs(cls, data):
        # `rungs: []` is "off", which `listed` (non-empty lists) would refuse.
        if isinstance(data, dict) and data.get("rungs") == []:
            data = {k: v for k, v in data.items() if k != "rungs"}
        return data

    @model_validator(mode="after")
    def _increasing(self):
        if list(self.rungs) != sorted(set(self.rungs)):
            raise fail(f"expected increasing epoch budgets, got {list(self.rungs)}", "rungs")
        if self.rungs and self.rungs[-1] != int(self.rungs[-1]):
            raise fail(f"the last rung is the full training: a whole number of epochs, got {self.rungs[-1]}", "rungs")
        return self


class SearchSettings(Section):
    algorithm: Annotated[str, OneOf(tuple(STRATEGIES))] = Field("surrogate", description="the search strategy")
    population: Annotated[int, Between(1, 100_000)] = Field(
        10, description="candidates of the first generation, and the population the strategy keeps")
    generations: Annotated[int, Between(0, 100_000)] = Field(
        1000, description="generations after the first (an upper bound when a budget stops the search)")
    offspring: Annotated[int, Between(0, 100_000)] = Field(
        2, description="aging, surrogate: new candidates per generation after the first; 0 = one per worker "
                       "(search.workers, or the available cores: results then depend on the worker count)")
    epochs: Annotated[int, Between(1, 10_000)] = Field(3, description="training budget of each candidate")
    options: dict[str, Any] = Field(default_factory=dict, description=OPTIONS_HELP)
    incumbent_evaluations: Annotated[int, Between(1, 100)] = Field(
        3, description="evaluations of the best genome, each with its own seed; its standing is their mean "
                       "(1 = no re-evaluation)")
    hall_of_fame: Annotated[int, Between(1, 1000)] = Field(5, description="how many best genomes hall_of_fame.json keeps")
    objectives: listed(str, "a non-empty list of objectives") = Field(
        ("accuracy",), description="nsga2: the score first, then what to minimize")
    fidelity: FidelitySettings = Field(default_factory=FidelitySettings)
    max_evaluations: Annotated[int, Between(0, 10**9)] = Field(0, description="stop after this many trainings; 0 = no limit")
    max_epochs: Annotated[int, Between(0, 10**12)] = Field(0, description="stop when this many training epochs are spent; 0 = no limit")
    max_cost: Annotated[Number, Between(0.0, 10**15)] = Field(
        0.0, description="stop when the candidates' costs (the problem's unit; the CNN's: reference epochs) sum to "
                         "this; 0 = no limit")
    time_budget: Annotated[Number, Between(0.0, 10**9)] = Field(0.0, description="stop after this many seconds; 0 = no limit")
    patience: Annotated[int, Between(0, 100_000)] = Field(0, description="stop after this many generations without improvement; 0 = off")
    backend: Annotated[str, OneOf(tuple(BACKENDS))] = Field("processes", description="where candidates run (same results on each)")
    workers: Annotated[int, Between(0, 1024)] = Field(0, description="parallel candidates; 0 = one per available core")
    ray_address: str = Field("", description="backend ray: empty = start a local Ray, else an existing cluster's address")
    gpus_per_trial: Annotated[Number, Between(0.0, 64.0)] = Field(0.0, description="backend ray: GPUs per candidate, fractional to share one")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data):
        for key, where in MOVED_TO_OPTIONS.items():
            if isinstance(data, dict) and key in data:
                raise fail(f"now a knob of the strategy ({where}): write it as search.options.{key}", key)
        return data

    @model_validator(mode="after")
    def _options_fit_the_strategy(self):
        model = options_model(STRATEGIES[self.algorithm])
        try:
            model.model_validate(self.options)
        except ValidationError as err:
            key, _, message = one_line(err, model, "options").partition(": ")
            raise fail(message, key) from None
        return self

    @model_validator(mode="after")
    def _consistent(self):
        if self.algorithm == "nsga2" and len(self.objectives) < 2:
            raise fail("nsga2 needs at least two objectives: the score, then what to minimize", "objectives")
        if self.algorithm in ("grid", "tpe") and self.fidelity.rungs:
            raise fail(f"successive halving works with ga, nsga2 and random, not {self.algorithm}", "fidelity")
        return self

    @property
    def proposals_per_generation(self) -> int:
        """`offspring`, or with 0 one proposal per worker (whatever the backend, so serial,
        processes and Ray agree for the same `workers`)."""
        return self.offspring or self.workers or available_cores()

    @property
    def budgets(self) -> tuple:
        """Budgets a candidate may receive: the rungs (whole numbers as int), or `epochs`."""
        rungs = tuple(int(r) if r == int(r) else r for r in self.fidelity.rungs)
        return rungs or (self.epochs,)
