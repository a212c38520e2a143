"""Optuna's TPE sampler as a strategy (ask/tell), the baseline the others are measured against."""
from __future__ import annotations

from pipeline.errors import ConfigError
from pipeline.search.space import FloatRange, IntRange
from pipeline.search.strategies.base import Strategy


class TPEStrategy(Strategy):
    """Optuna's TPE sampler proposing genomes over the same space (ask/tell, `population`
    trials per generation). A resumed TPE search replays its trials into a new study, so it
    continues but is not bit-identical to an uninterrupted one (the sampler's RNG restarts)."""

    def __init__(self, space, settings, seed, repair):
        super().__init__(space, settings, seed, repair)
        try:
            import optuna
        except ImportError:
            raise ConfigError("search.algorithm: tpe needs Optuna: pip install 'automl-pipeline[tpe]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.seed = seed
        self.distributions = {name: self._distribution(gene) for name, gene in space.genes}
        self.study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        self.pending = []
        self.trials: list[list] = []

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
                self.trials.append([trial.params, None])
            else:
                self.study.tell(trial, entry.score)
                self.trials.append([trial.params, entry.score])

    def state(self, key_of):
        return dict(super().state(key_of), trials=self.trials)

    def load_state(self, state, result_of):
        super().load_state(state, result_of)
        self.trials = state["trials"]
        state_of = self.optuna.trial.TrialState
        for params, value in self.trials:
            self.study.add_trial(self.optuna.trial.create_trial(
                params=params, distributions=self.distributions, value=value,
                state=state_of.COMPLETE if value is not None else state_of.FAIL,
            ))
        self.study.sampler = self.optuna.samplers.TPESampler(seed=self.seed + len(self.trials))
