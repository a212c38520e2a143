"""What every strategy shares: a best-so-far population, single-objective picks, sampling
and mutation inside the space followed by the problem's repair, and checkpointable state.

Strategies draw from the global `random` generator, which the loop seeds and checkpoints
(DEAP's operators use it too), so a resumed search continues the same random stream.
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
        for _ in range(count):
            for _ in range(20):
                genome = self.sample()
                if genome_key(genome) not in self.seen:
                    break
            self.seen.add(genome_key(genome))
            out.append(genome)
        return out

    def state(self, key_of: Callable) -> dict:
        return {"pop": [[s.genome, key_of(s.result), s.rung] for s in self.pop], "seen": sorted(self.seen)}

    def load_state(self, state: dict, result_of: Callable) -> None:
        self.pop = [Scored(g, result_of(k), r) for g, k, r in state["pop"]]
        self.seen = set(state["seen"])
