"""A candidate's standing, and the archive of every standing a search has seen.

Standings are ordered without looking at the score's scale or sign: a failed candidate
ranks below every finished one, a candidate that reached a higher rung (successive
halving) above every one eliminated earlier, then the score, then the loss. The archive
keeps each genome's best standing; strategies query it (best, ranked, proposed) instead of
keeping their own copies, and the hall of fame is its head.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from pipeline.search.problem import Result
from pipeline.search.space import genome_key


@dataclass
class Scored:
    """A genome's standing: the result at the highest rung it reached, and that rung."""

    genome: dict
    result: Result
    rung: int = 0

    @property
    def failed(self) -> bool:
        return self.result.failed

    @property
    def key(self) -> str:
        return genome_key(self.genome)

    def sort_key(self) -> tuple[int, int, float, float]:
        """(finished, rung, score, -loss): larger is better; every failure ties at the bottom."""
        if self.failed:
            return (0, 0, -math.inf, -math.inf)
        return (1, self.rung, self.result.score, -self.result.loss)

    def objectives(self, names: Sequence[str]) -> tuple[float, ...]:
        """The first objective is the score (maximized); the others are result metrics
        (minimized). A failed candidate is the worst on every objective."""
        if self.failed:
            return (-math.inf, *(math.inf for _ in names[1:]))
        return (self.result.score, *(float(self.result.metrics.get(name, math.inf)) for name in names[1:]))


def averaged(standing: Scored, results: Sequence[Result]) -> Scored:
    """The standing of a genome evaluated several times: the mean score and loss (failed
    if any evaluation failed)."""
    failed = next((r for r in results if r.failed), None)
    if failed is not None:
        return Scored(standing.genome, failed, standing.rung)
    mean = replace(results[0], score=sum(r.score for r in results) / len(results),
                   loss=sum(r.loss for r in results) / len(results))
    return Scored(standing.genome, mean, standing.rung)


def ranked(standings: Iterable[Scored]) -> list[Scored]:
    """Best first; ties keep their order (the earlier seen first)."""
    return sorted(standings, key=Scored.sort_key, reverse=True)


class Archive:
    """Each genome's best standing (in the order genomes were first scored) and the keys
    of every genome proposed so far."""

    def __init__(self):
        self.standings: dict[str, Scored] = {}
        self.proposed: set[str] = set()

    def add(self, scored: Iterable[Scored | None]) -> None:
        for entry in scored:
            if entry is None:
                continue
            known = self.standings.get(entry.key)
            if known is None or entry.sort_key() > known.sort_key():
                self.standings[entry.key] = entry

    def replace(self, standing: Scored) -> None:
        """Set a genome's standing (its mean over repeated evaluations)."""
        self.standings[standing.key] = standing

    def mark_proposed(self, genomes: Iterable[dict]) -> None:
        self.proposed.update(genome_key(g) for g in genomes)

    def was_proposed(self, genome: dict) -> bool:
        return genome_key(genome) in self.proposed

    def __len__(self) -> int:
        return len(self.standings)

    def all(self) -> list[Scored]:
        return list(self.standings.values())

    def finished(self) -> list[Scored]:
        return [s for s in self.standings.values() if not s.failed]

    def best(self, count: int | None = None) -> list[Scored]:
        """The `count` best standings (all when None), best first."""
        return ranked(self.standings.values())[:count]

    def incumbent(self) -> Scored | None:
        """The best standing so far (None before the first result)."""
        return max(self.standings.values(), key=Scored.sort_key, default=None)
