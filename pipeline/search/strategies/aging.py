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

from pipeline.search.scored import Archive, Scored
from pipeline.search.strategies.base import Strategy
from pipeline.search.strategies.genetic import GeneMutation, Tournament, deap_individuals


class AgingEvolution(Strategy):
    def __init__(self, *args, tournament: Tournament = 3, gene_mutation: GeneMutation = 0.2, **kwargs):
        super().__init__(*args, **kwargs)
        self.tournament, self.gene_mutation = tournament, gene_mutation
        self.ages: deque[Scored] = deque()

    def population(self, archive: Archive) -> list[Scored]:
        return list(self.ages)

    def parents(self, count: int) -> list[dict]:
        """`count` tournament winners from the current population."""
        with self.deap():
            winners = tools.selTournament(deap_individuals(self.space, list(self.ages)), count, tournsize=self.tournament)
        return [ind.scored.genome for ind in winners]

    def mutants(self, parent: dict, tries: int = 5):
        return (self.mutate(parent, self.gene_mutation) for _ in range(tries))

    def propose(self, generation: int, archive: Archive) -> list[dict]:
        if generation == 0 or not self.ages:
            return self.first_generation(archive)
        return [self.unseen(self.mutants(parent), archive) for parent in self.parents(self.offspring)]

    def observe(self, generation, scored, archive):
        arrived = [entry for entry in scored if entry is not None]
        if generation == 0 and len(arrived) > self.population_size:
            # A first generation grown by warm-start genomes keeps its best, in their order.
            kept = {id(s) for s in sorted(arrived, key=Scored.sort_key, reverse=True)[: self.population_size]}
            arrived = [s for s in arrived if id(s) in kept]
        self.ages.extend(arrived)
        while len(self.ages) > self.population_size:
            self.ages.popleft()
