"""Random search: independent samples, `population` per generation."""
from __future__ import annotations

from pipeline.search.strategies.base import Strategy


class RandomStrategy(Strategy):
    """Independent samples never proposed before, `population` per generation."""

    def propose(self, generation, archive):
        return self.first_generation(archive) if generation == 0 else self.fresh_samples(self.population_size, archive)
