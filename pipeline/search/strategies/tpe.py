"""Optuna's TPE sampler as a strategy (ask/tell), the baseline the others are measured against."""
from __future__ import annotations

from pipeline.errors import ConfigError
from pipeline.search.space import FloatRange, IntRange
from pipeline.search.strategies.base import Strategy


class TPEStrategy(Strategy):
    """Optuna's TPE sampler proposing genomes over the same space (ask/tell, `population`
    trials per generation); warm-start genomes are enqueued trials (`enqueue_trial`).
    Optuna 5's TPE is always multivariate (its `multivariate` flag is kept but unused)."""

    def __init__(self, space, settings, seed, repair):
        super().__init__(space, settings, seed, repair)
        try:
            import optuna
        except ImportError:
            raise ConfigError("search.algorithm: tpe needs Optuna: pip install 'automl-pipeline[tpe]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.distributions = {name: self._distribution(gene) for name, gene in space.genes}
        self.study = optuna.create_study(direction="maximize", sampler=self.sampler(optuna, seed))
        self.pending = []

    def enqueue(self, genomes):
        for genome in genomes:
            self.study.enqueue_trial({name: genome[name] for name in self.distributions}, skip_if_exists=True)

    @staticmethod
    def sampler(optuna, seed: int):
        return optuna.samplers.TPESampler(seed=seed)

    def _distribution(self, gene):
        d = self.optuna.distributions
        if isinstance(gene, IntRange):
            return d.IntDistribution(gene.low, gene.high)
        if isinstance(gene, FloatRange):
            return d.FloatDistribution(gene.low, gene.high, log=gene.log)
        return d.CategoricalDistribution(list(gene.options))

    def propose(self, generation):
        self.pending = [self.study.ask(self.distributions) for _ in range(self.settings.population)]
        return [self.repair(dict(trial.params)) for trial in self.pending]

    def observe(self, generation, proposals, scored):
        super().observe(generation, proposals, scored)
        for trial, entry in zip(self.pending, scored):
            if entry is None or entry.result.failure:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, entry.score)

