"""DEAP's genetic algorithms: (mu + lambda) GA and NSGA-II.

DEAP does what it already does: `creator` classes defined once at import (pickling needs
them), `selTournament`, `cxUniform`, `varAnd`, `selBest`, `selNSGA2`, `selTournamentDCD`
and `sortNondominated`. Individuals are genomes as lists in gene order; every offspring is
repaired by the problem before it is proposed.
"""
from __future__ import annotations

from typing import Sequence

from deap import algorithms, base, creator, tools

from pipeline.search.scored import Scored
from pipeline.search.space import genome_key
from pipeline.search.strategies.base import Strategy

if not hasattr(creator, "AutoMLFitness"):
    # Single objective, lexicographic: (rung + score) up, then loss down.
    creator.create("AutoMLFitness", base.Fitness, weights=(1.0, -1.0))
    creator.create("AutoMLIndividual", list, fitness=creator.AutoMLFitness)


def _multi_fitness(objectives: Sequence[str]):
    """A DEAP individual class for these objectives: maximize the first, minimize the rest."""
    name = "AutoMLFitness_" + "_".join(objectives)
    if not hasattr(creator, name):
        creator.create(name, base.Fitness, weights=tuple(1.0 if i == 0 else -1.0 for i in range(len(objectives))))
        creator.create("AutoMLIndividual_" + "_".join(objectives), list, fitness=getattr(creator, name))
    return getattr(creator, "AutoMLIndividual_" + "_".join(objectives))


def single_fitness(scored: Scored) -> tuple:
    return (scored.score, scored.result.loss)


def deap_individuals(space, scored: Sequence[Scored], individual_class=None, fitness=single_fitness) -> list:
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

    def __init__(self, space, settings, seed, repair):
        super().__init__(space, settings, seed, repair)
        self.toolbox = base.Toolbox()
        self.toolbox.register("mate", self._mate)
        self.toolbox.register("mutate", self._mutate)

    def _mate(self, first, second):
        tools.cxUniform(first, second, indpb=0.5)
        for ind in (first, second):
            ind[:] = self.space.to_list(self.repair(self.space.from_list(ind)))
        return first, second

    def _mutate(self, ind):
        ind[:] = self.space.to_list(self.mutate(self.space.from_list(ind)))
        return (ind,)

    def fitness_values(self, scored: Scored) -> tuple:
        return single_fitness(scored)

    def individuals(self, scored: Sequence[Scored]) -> list:
        return deap_individuals(self.space, scored, self.individual_class, self.fitness_values)

    def select_parents(self, individuals: list) -> list:
        return tools.selTournament(individuals, len(individuals), tournsize=self.settings.tournament)

    def propose(self, generation: int) -> list[dict]:
        if generation == 0 or not self.pop:
            return self.fresh_samples(self.settings.population)
        parents = self.select_parents(self.individuals(self.pop))
        offspring = algorithms.varAnd(parents, self.toolbox, self.settings.crossover, self.settings.mutation)
        genomes = []
        for ind in offspring:
            for _ in range(3):  # spend the generation on new genomes, not memo hits
                if genome_key(self.space.from_list(ind)) not in self.seen:
                    break
                self.toolbox.mutate(ind)
            genome = self.space.from_list(ind)
            self.seen.add(genome_key(genome))
            genomes.append(genome)
        return genomes

    def observe(self, generation, proposals, scored):
        candidates = self.individuals(self.pop + [s for s in scored if s])
        self.pop = [ind.scored for ind in self.survivors(candidates)]

    def survivors(self, candidates: list) -> list:
        return tools.selBest(candidates, self.settings.population)


class NSGA2Strategy(GeneticStrategy):
    """Multi-objective: survivors by `selNSGA2` (non-domination, then crowding distance).

    `best.yaml` is picked from the Pareto front of everything evaluated: the most accurate
    member (rung + score), ties broken by the next objectives in order.
    """

    def __init__(self, space, settings, seed, repair):
        super().__init__(space, settings, seed, repair)
        self.individual_class = _multi_fitness(settings.objectives)
        self.archive: dict[str, Scored] = {}

    def fitness_values(self, scored):
        return scored.objectives(self.settings.objectives)

    def select_parents(self, individuals):
        tools.selNSGA2(individuals, len(individuals))  # assigns crowding distances
        if len(individuals) % 4 == 0:
            return tools.selTournamentDCD(individuals, len(individuals))
        return tools.selRandom(individuals, len(individuals))

    def survivors(self, candidates):
        return tools.selNSGA2(candidates, self.settings.population)

    def observe(self, generation, proposals, scored):
        super().observe(generation, proposals, scored)
        for entry in scored:
            if entry is None:
                continue
            key = genome_key(entry.genome)
            if key not in self.archive or entry.sort_key() > self.archive[key].sort_key():
                self.archive[key] = entry

    def pareto_front(self) -> list[Scored]:
        individuals = self.individuals(list(self.archive.values()))
        if not individuals:
            return []
        front = tools.sortNondominated(individuals, len(individuals), first_front_only=True)[0]
        return sorted((ind.scored for ind in front), key=lambda s: self._rank(s), reverse=True)

    def _rank(self, scored: Scored) -> tuple:
        values = self.fitness_values(scored)
        return (values[0],) + tuple(-v for v in values[1:])

    def pick_best(self, hall):
        front = self.pareto_front()
        return max(front, key=self._rank) if front else hall[0]
