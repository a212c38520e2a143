"""Regularized (aging) evolution (Real et al., 2019): steady state, tournament selection,
and the oldest individual removed rather than the worst.

The population is the `population` most recently evaluated individuals. Each generation
after the first proposes `offspring` children; each is a mutation of the winner of a
tournament of `tournament` individuals drawn from the population (DEAP's
`selTournament`). Children join the population and the oldest leave, so a genome survives
only as long as it keeps producing good children: the search cannot settle on one lucky
early evaluation, which is what makes aging evolution strong when evaluations are scarce.
"""
from __future__ import annotations

from collections import deque

from deap import tools

from pipeline.search.scored import Scored
from pipeline.search.space import genome_key
from pipeline.search.strategies.base import Strategy
from pipeline.search.strategies.genetic import deap_individuals


class AgingEvolution(Strategy):
    def __init__(self, space, settings, seed, repair):
        super().__init__(space, settings, seed, repair)
        self.ages: deque[Scored] = deque()

    @property
    def offspring(self) -> int:
        return self.settings.offspring or self.settings.population

    def population(self) -> list[Scored]:
        return list(self.ages)

    def parents(self, count: int) -> list[dict]:
        """`count` tournament winners from the current population."""
        winners = tools.selTournament(deap_individuals(self.space, list(self.ages)), count,
                                      tournsize=self.settings.tournament)
        return [ind.scored.genome for ind in winners]

    def new_mutant(self, parent: dict, tries: int = 5) -> dict:
        """A mutant not proposed before (a few tries, then whatever the last try gave)."""
        for _ in range(tries):
            child = self.mutate(parent)
            if genome_key(child) not in self.seen:
                break
        self.seen.add(genome_key(child))
        return child

    def propose(self, generation: int) -> list[dict]:
        if generation == 0 or not self.ages:
            return self.fresh_samples(self.settings.population)
        return [self.new_mutant(parent) for parent in self.parents(self.offspring)]

    def observe(self, generation, proposals, scored):
        self.ages.extend(entry for entry in scored if entry is not None)
        while len(self.ages) > self.settings.population:
            self.ages.popleft()
