"""The strategy interface: what to try next, given the archive of what was scored.

Modelled on Optuna's samplers. A strategy subclasses `Strategy` and implements `propose`;
every other hook has a documented default. Its knobs are keyword arguments of its
constructor, annotated with their type, range and description: `options_model` reads them
off the signatures (the class and its bases), so `search.options` in params.yaml is
validated per strategy and a knob is declared once. Each strategy draws from its own
generator (`self.rng`), seeded from the run seed; DEAP's operators draw from the global
`random` module, so calls into DEAP go through `with self.deap():`, which lends them the
strategy's generator and takes its state back. Given the same results, a strategy makes
the same proposals, which is what lets a search replay itself from the candidate store.

A new strategy is one file with one class, and one line in `STRATEGIES`.
"""
from __future__ import annotations

import inspect
import random
import typing
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

from pydantic import Field, create_model

from pipeline.search.scored import Archive, Scored
from pipeline.search.space import Space
from pipeline.validation import Section

Repair = Callable[[dict], dict]

#: Constructor arguments every strategy receives from the engine; the rest are knobs.
GENERIC = ("space", "repair", "rng", "population", "offspring", "generations", "objectives")


class Strategy(ABC):
    """A search strategy. The loop calls, each generation, `propose` then `observe`; at
    the end `pick_best` and `pareto_front`; `population` feeds the progress line.

    population: size of the first generation (and of what the strategy keeps);
    offspring: proposals per later generation (0 = `population`);
    generations: generations after the first (`last_generation` may say otherwise);
    objectives: the score's name, then what multi-objective strategies minimize.
    """

    def __init__(self, space: Space, repair: Repair, rng: random.Random, *, population: int, offspring: int = 0,
                 generations: int = 0, objectives: Sequence[str] = ("score",)):
        self.space, self.repair, self.rng = space, repair, rng
        self.population_size = population
        self.offspring = offspring or population
        self.generations = generations
        self.objectives = tuple(objectives)
        self.queued: list[dict] = []

    # hooks

    def enqueue(self, genomes: Sequence[dict]) -> None:
        """Genomes to propose first (a warm start), before any sample of the strategy's own."""
        self.queued.extend(self.repair(dict(g)) for g in genomes)

    @abstractmethod
    def propose(self, generation: int, archive: Archive) -> list[dict]:
        """The genomes to evaluate in this generation (repaired; empty = nothing left)."""

    def observe(self, generation: int, scored: Sequence[Scored | None], archive: Archive) -> None:
        """Told the standings of this generation's proposals (None: over the budget); the
        archive already holds them."""

    def population(self, archive: Archive) -> list[Scored]:
        """What the strategy currently keeps (the progress line's "population")."""
        return archive.best(self.population_size)

    def pick_best(self, archive: Archive) -> Scored:
        """The search's answer."""
        return archive.incumbent()

    def pareto_front(self, archive: Archive) -> list[Scored]:
        return []

    def last_generation(self) -> int:
        return self.generations

    # helpers for subclasses

    def sample(self) -> dict:
        return self.repair(self.space.sample(self.rng))

    def mutate(self, genome: dict, indpb: float) -> dict:
        return self.repair(self.space.mutate(genome, self.rng, indpb))

    def unseen(self, candidates: Iterable[dict], archive: Archive) -> dict:
        """The first of `candidates` (a few tries, lazily drawn) not proposed before, or
        the last one when all were; marked as proposed."""
        for genome in candidates:
            if not archive.was_proposed(genome):
                break
        archive.mark_proposed([genome])
        return genome

    def first_generation(self, archive: Archive) -> list[dict]:
        """Every queued (warm-start) genome, then random samples up to `population`: the
        first generation grows rather than leave a queued genome out."""
        return self.fresh_samples(max(self.population_size, len(self.queued)), archive)

    def samples(self, tries: int = 20) -> Iterator[dict]:
        return (self.sample() for _ in range(tries))

    def fresh_samples(self, count: int, archive: Archive) -> list[dict]:
        """Queued (warm-start) genomes first, then random samples, none proposed before."""
        out = []
        while self.queued and len(out) < count:
            genome = self.queued.pop(0)
            if not archive.was_proposed(genome):
                archive.mark_proposed([genome])
                out.append(genome)
        return out + [self.unseen(self.samples(), archive) for _ in range(count - len(out))]

    @contextmanager
    def deap(self) -> Iterator[None]:
        """Run DEAP's operators (which draw from the global `random`) on this strategy's
        generator, leaving the global generator as it was. Inside, the strategy's own draws
        (a mutation DEAP calls back) come from the same stream."""
        saved, own = random.getstate(), self.rng
        random.setstate(own.getstate())
        self.rng = random  # the module has Random's methods: one stream for DEAP and us
        try:
            yield
        finally:
            self.rng = own
            own.setstate(random.getstate())
            random.setstate(saved)


def knobs(cls: type[Strategy]) -> dict[str, tuple[Any, Any]]:
    """name -> (annotated type, default) of every keyword argument of the constructors of
    `cls` and its bases, less the generic ones."""
    out: dict[str, tuple[Any, Any]] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        hints = typing.get_type_hints(init, include_extras=True)
        for name, parameter in inspect.signature(init).parameters.items():
            if name in GENERIC or name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            out[name] = (hints.get(name, Any), parameter.default)
    return out


def options_model(cls: type[Strategy]) -> type[Section]:
    """The pydantic model that validates `search.options` for this strategy."""
    fields = {name: (kind, Field(default)) for name, (kind, default) in knobs(cls).items()}
    return create_model(f"{cls.__name__}Options", __base__=Section, **fields)


def describe_knobs(cls: type[Strategy]) -> str:
    return ", ".join(f"{name} ({default})" for name, (_, default) in knobs(cls).items()) or "none"


def strategy_rng(seed: int) -> random.Random:
    """The strategy's own generator, from the run seed."""
    return random.Random(f"strategy|{seed}")
