"""What every strategy shares: a best-so-far population, single-objective picks, sampling
and mutation inside the space followed by the problem's repair, and warm-start genomes.

Strategies draw from the global `random` generator, which the loop seeds (DEAP's operators
use it too): given the same results, a strategy makes the same proposals, which is what
lets a search replay itself from the candidate store.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

from pipeline.search.scored import Scored
from pipeline.search.space import Space, genome_key

Repair = Callable[[dict], dict]


class Strategy:
    def __init__(self, space: Space, settings, seed: int, repair: Repair):
        self.space, self.settings, self.seed, self.repair = space, settings, seed, repair
        self.pop: list[Scored] = []
        self.seen: set[str] = set()
        self.queued: list[dict] = []

    def enqueue(self, genomes: Sequence[dict]) -> None:
        """Genomes to propose first (a warm start), before any sample of the strategy's own."""
        self.queued.extend(self.repair(dict(g)) for g in genomes)

    def last_generation(self) -> int:
        return self.settings.generations

    def population(self) -> list[Scored]:
        return self.pop

    def propose(self, generation: int) -> list[dict]:
        raise NotImplementedError

    def observe(self, generation: int, proposals: Sequence[dict], scored: Sequence[Scored | None]) -> None:
        self.pop = sorted(self.pop + [s for s in scored if s], key=Scored.sort_key, reverse=True)
        self.pop = self.pop[: self.settings.population]

    def pick_best(self, hall: Sequence[Scored]) -> Scored:
        return hall[0]

    def pareto_front(self) -> list[Scored]:
        return []

    def sample(self) -> dict:
        return self.repair(self.space.sample(random))

    def mutate(self, genome: dict) -> dict:
        return self.repair(self.space.mutate(genome, random, self.settings.gene_mutation))

    def fresh_samples(self, count: int) -> list[dict]:
        """`count` genomes not proposed before (a few retries each, then duplicates allowed)."""
        out = []
        while self.queued and len(out) < count:
            genome = self.queued.pop(0)
            if genome_key(genome) not in self.seen:
                self.seen.add(genome_key(genome))
                out.append(genome)
        for _ in range(count - len(out)):
            for _ in range(20):
                genome = self.sample()
                if genome_key(genome) not in self.seen:
                    break
            self.seen.add(genome_key(genome))
            out.append(genome)
        return out
