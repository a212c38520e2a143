"""A candidate's standing in the search, and the hall of fame of the best ever seen."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from pipeline.search.problem import Result
from pipeline.search.space import genome_key


@dataclass
class Scored:
    """A genome's standing: the result at the highest rung it reached, and that rung."""

    genome: dict
    result: Result
    rung: int = 0

    @property
    def score(self) -> float:
        """Rung first, then score: a candidate that survived to a larger budget outranks
        every candidate eliminated earlier; within a rung, the score at that rung's budget."""
        return self.rung + self.result.score

    def objectives(self, names: Sequence[str]) -> tuple[float, ...]:
        """The first objective is the score (maximized); the others are result metrics
        (minimized), infinite for a failed candidate."""
        failed = bool(self.result.failure)
        rest = tuple(math.inf if failed else float(self.result.metrics.get(name, math.inf)) for name in names[1:])
        return (self.score, *rest)

    def sort_key(self) -> tuple[float, float]:
        return (self.score, -self.result.loss)


class HallOfFame:
    """The `size` best (genome, budget) results ever seen, best first (stable on ties)."""

    def __init__(self, size: int):
        self.size = size
        self.items: list[Scored] = []

    def update(self, scored: Sequence[Scored | None]) -> None:
        """Add new standings; a genome appears once, at the best standing it reached."""
        by_genome = {genome_key(s.genome): s for s in self.items}
        for entry in scored:
            if entry is None:
                continue
            key = genome_key(entry.genome)
            if key not in by_genome or entry.sort_key() > by_genome[key].sort_key():
                by_genome[key] = entry
        self.items = sorted(by_genome.values(), key=lambda s: s.sort_key(), reverse=True)[: self.size]
