"""Optuna's TPE sampler as a strategy (ask/tell), the baseline the others are measured against."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from pipeline.errors import ConfigError
from pipeline.search.space import FloatRange, IntRange
from pipeline.search.strategies.base import Strategy
from pipeline.validation import Between


class TPEStrategy(Strategy):
    """Optuna's TPE sampler proposing genomes over the same space (ask/tell, `population`
    trials per generation; with more than one, running trials count as bad under the
    constant liar, so a batch spreads out). Warm-start genomes are enqueued trials.

    Optuna learns from what was trained: when the problem's repair changes an asked
    configuration, the asked trial is told FAIL (samplers ignore it) and the repaired one
    is added as the completed trial, with its score. Optuna 5's TPE is always multivariate.
    """

    def __init__(self, *args,
                 startup_trials: Annotated[int, Between(1, 10_000), Field(description="random trials before TPE models")] = 10,
                 constant_liar: Annotated[bool, Field(description="count running trials as bad (batches of more than one)")] = True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        try:
            import optuna
        except ImportError:
            raise ConfigError("search.algorithm: tpe needs Optuna: pip install 'automl-pipeline[tpe]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.distributions = {name: self._distribution(gene) for name, gene in self.space.genes}
        sampler = optuna.samplers.TPESampler(seed=self.rng.randrange(2**31), n_startup_trials=startup_trials,
                                             constant_liar=constant_liar)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.pending: list[tuple[object, dict]] = []

    def enqueue(self, genomes):
        for genome in genomes:
            self.study.enqueue_trial({name: genome[name] for name in self.distributions}, skip_if_exists=True)

    def _distribution(self, gene):
        d = self.optuna.distributions
        if isinstance(gene, IntRange):
            return d.IntDistribution(gene.low, gene.high)
        if isinstance(gene, FloatRange):
            return d.FloatDistribution(gene.low, gene.high, log=gene.log)
        return d.CategoricalDistribution(list(gene.options))

    def propose(self, generation, archive):
        self.pending = []
        for _ in range(self.population_size):
            trial = self.study.ask(self.distributions)
            self.pending.append((trial, self.repair(dict(trial.params))))
        archive.mark_proposed([genome for _, genome in self.pending])
        return [genome for _, genome in self.pending]

    def trained_params(self, asked: dict, trained: dict) -> dict:
        """The trained genome as Optuna parameters; a gene the repair reset to a value
        outside the space (an inactive gene: it changes nothing) keeps the asked value."""
        return {name: trained[name] if self.space[name].contains(trained[name]) else asked[name]
                for name in self.distributions}

    def observe(self, generation, scored, archive):
        fail = self.optuna.trial.TrialState.FAIL
        for (trial, genome), entry in zip(self.pending, scored):
            if entry is None or entry.failed:
                self.study.tell(trial, state=fail)
                continue
            params = self.trained_params(trial.params, genome)
            if params == trial.params:
                self.study.tell(trial, entry.result.score)
            else:
                self.study.tell(trial, state=fail)
                self.study.add_trial(self.optuna.trial.create_trial(
                    params=params, distributions=self.distributions, value=entry.result.score))
