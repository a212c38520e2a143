"""Grid search: every combination of the listed choices, refused up front when the grid is
infinite (a real-valued range) or larger than the evaluation budget."""
from __future__ import annotations

import itertools
import math

from pipeline.errors import ConfigError
from pipeline.search.space import FloatRange, Space
from pipeline.search.strategies.base import Strategy


def grid_size(space: Space) -> float:
    """How many points the grid has; infinite when a real-valued gene is a range."""
    size = 1
    for _, gene in space.genes:
        values = gene.values()
        if values is None and not gene.pinned:
            return math.inf
        size *= len(values) if values is not None else 1
    return size


def check_grid(space: Space, settings) -> None:
    """Refuse a grid search that is infinite or larger than the evaluation budget."""
    if settings.algorithm != "grid":
        return
    size = grid_size(space)
    if size == math.inf:
        ranges = [name for name, gene in space.genes if isinstance(gene, FloatRange) and not gene.pinned]
        raise ConfigError(f"search.algorithm: grid needs finite choices; {', '.join(ranges)} are real-valued ranges (list values instead)")
    limit = settings.max_evaluations or settings.population * (settings.generations + 1)
    if size > limit:
        which = "search.max_evaluations" if settings.max_evaluations else "search.population x (generations + 1)"
        raise ConfigError(f"search.algorithm: the grid has {size} points, more than {which} = {limit}")


class GridStrategy(Strategy):
    """Every combination of the listed choices (ranges of integers count as lists), in
    order, `population` per generation; repaired duplicates are skipped."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.position = 0

    def last_generation(self) -> int:
        return 10**9  # a grid runs until it is exhausted (its size was checked against the budget)

    def _points(self):
        axes = [gene.values() if gene.values() is not None else [gene.low] for _, gene in self.space.genes]
        return itertools.product(*axes)

    def propose(self, generation, archive):
        out = []
        points = itertools.islice(self._points(), self.position, None)
        for values in points:
            self.position += 1
            genome = self.repair(dict(zip(self.space.names, values)))
            if archive.was_proposed(genome):
                continue
            archive.mark_proposed([genome])
            out.append(genome)
            if len(out) == self.population_size:
                break
        return out
