"""Random search: independent samples, `population` per generation."""
from __future__ import annotations

from pipeline.search.strategies.base import Strategy


class RandomStrategy(Strategy):
    """Independent samples, `population` per generation; the population is the best so far."""

    def propose(self, generation: int) -> list[dict]:
        return self.fresh_samples(self.settings.population)
