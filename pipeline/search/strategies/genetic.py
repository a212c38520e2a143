"""DEAP's genetic algorithms: (mu + lambda) GA and NSGA-II.

DEAP does what it already does: `creator` classes defined once at import (pickling needs
them), `selTournament`, `cxUniform`, `varAnd`, `selBest`, `selNSGA2`, `selTournamentDCD`
and `sortNondominated`. Individuals are genomes as lists in gene order carrying their
standing; every offspring is repaired by the problem before it is proposed. DEAP draws from
the global `random`, so every call into it runs under `self.deap()` (the strategy's own
generator).
"""
from __future__ import annotations

from typing import Annotated, Sequence

from deap import algorithms, base, creator, tools
from pydantic import Field

from pipeline.search.scored import Archive, Scored
from pipeline.search.strategies.base import Strategy
from pipeline.validation import Between, Number

Probability = Annotated[Number, Between(0.0, 1.0)]
Tournament = Annotated[int, Between(1, 1000), Field(description="tournament size for parent selection")]
GeneMutation = Annotated[Number, Between(0.0, 1.0), Field(description="probability that each gene of a mutant changes")]

if not hasattr(creator, "AutoMLFitness"):
    # Single objective, lexicographic on Scored.sort_key: finished, rung, score, -loss.
    creator.create("AutoMLFitness", base.Fitness, weights=(1.0, 1.0, 1.0, 1.0))
    creator.create("AutoMLIndividual", list, fitness=creator.AutoMLFitness)


def _multi_fitness(objectives: Sequence[str]):
    """A DEAP individual class for these objectives: maximize the first, minimize the rest."""
    name = "AutoMLFitness_" + "_".join(objectives)
    if not hasattr(creator, name):
        creator.create(name, base.Fitness, weights=tuple(1.0 if i == 0 else -1.0 for i in range(len(objectives))))
        creator.create("AutoMLIndividual_" + "_".join(objectives), list, fitness=getattr(creator, name))
    return getattr(creator, "AutoMLIndividual_" + "_".join(objectives))


def deap_individuals(space, scored: Sequence[Scored], individual_class=None, fitness=Scored.sort_key) -> list:
    """DEAP individuals (genomes as lists) carrying their fitness and their standing."""
    out = []
    for entry in scored:
        ind = (individual_class or creator.AutoMLIndividual)(space.to_list(entry.genome))
        ind.fitness.values = fitness(entry)
        ind.scored = entry
        out.append(ind)
    return out


class GeneticStrategy(Strategy):
    """(mu + lambda) GA: tournament parents, uniform crossover and mutation (varAnd),
    offspring that repeat an earlier genome mutated again, survivors by `selBest`."""

    individual_class = creator.AutoMLIndividual

    def __init__(self, *args, crossover: Annotated[Probability, Field(description="per-pair uniform crossover probability")] = 0.6,
                 mutation: Annotated[Probability, Field(description="per-individual mutation probability")] = 0.3,
                 gene_mutation: GeneMutation = 0.2, tournament: Tournament = 3, **kwargs):
        super().__init__(*args, **kwargs)
        self.crossover, self.mutation, self.gene_mutation, self.tournament = crossover, mutation, gene_mutation, tournament
        self.pop: list[Scored] = []
        self.toolbox = base.Toolbox()
        self.toolbox.register("mate", self._mate)
        self.toolbox.register("mutate", self._mutate)

    def _mate(self, first, second):
        tools.cxUniform(first, second, indpb=0.5)
        for ind in (first, second):
            ind[:] = self.space.to_list(self.repair(self.space.from_list(ind)))
        return first, second

    def _mutate(self, ind):
        ind[:] = self.space.to_list(self.mutate(self.space.from_list(ind), self.gene_mutation))
        return (ind,)

    def fitness_values(self, scored: Scored) -> tuple:
        return scored.sort_key()

    def individuals(self, scored: Sequence[Scored]) -> list:
        return deap_individuals(self.space, scored, self.individual_class, self.fitness_values)

    def select_parents(self, individuals: list) -> list:
        return tools.selTournament(individuals, len(individuals), tournsize=self.tournament)

    def propose(self, generation: int, archive: Archive) -> list[dict]:
        if generation == 0 or not self.pop:
            return self.first_generation(archive)
        with self.deap():
            offspring = algorithms.varAnd(self.select_parents(self.individuals(self.pop)), self.toolbox,
                                          self.crossover, self.mutation)
        # Spend the generation on new genomes, not memo hits: a repeat is mutated again.
        return [self.unseen(self._variants(ind), archive) for ind in offspring]

    def _variants(self, ind, again: int = 3):
        """The offspring as it is, then mutated `again` times, one by one."""
        yield self.space.from_list(ind)
        for _ in range(again):
            self._mutate(ind)
            yield self.space.from_list(ind)

    def observe(self, generation, scored, archive):
        candidates = self.individuals(self.pop + [s for s in scored if s])
        with self.deap():
            self.pop = [ind.scored for ind in self.survivors(candidates)]

    def survivors(self, candidates: list) -> list:
        return tools.selBest(candidates, self.population_size)

    def population(self, archive):
        return self.pop


class NSGA2Strategy(GeneticStrategy):
    """Multi-objective: survivors by `selNSGA2` (non-domination, then crowding distance).

    `best.yaml` is picked from the Pareto front of everything evaluated: the most accurate
    member (rung, then score), ties broken by the next objectives in order.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.individual_class = _multi_fitness(self.objectives)

    def fitness_values(self, scored):
        return scored.objectives(self.objectives)

    def select_parents(self, individuals):
        tools.selNSGA2(individuals, len(individuals))  # assigns crowding distances
        if len(individuals) % 4 == 0:
            return tools.selTournamentDCD(individuals, len(individuals))
        return tools.selRandom(individuals, len(individuals))

    def survivors(self, candidates):
        return tools.selNSGA2(candidates, self.population_size)

    def pareto_front(self, archive) -> list[Scored]:
        individuals = self.individuals(archive.finished())
        if not individuals:
            return []
        front = tools.sortNondominated(individuals, len(individuals), first_front_only=True)[0]
        return sorted((ind.scored for ind in front), key=self._rank, reverse=True)

    def _rank(self, scored: Scored) -> tuple:
        values = self.fitness_values(scored)
        return (scored.rung, values[0]) + tuple(-v for v in values[1:])

    def pick_best(self, archive):
        front = self.pareto_front(archive)
        return max(front, key=self._rank) if front else archive.incumbent()
