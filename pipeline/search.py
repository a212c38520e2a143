"""The genetic search: DEAP's toolbox, operators and records around our genome.

`creator` classes are defined once at import (pickling needs them). Variation is DEAP's
`varAnd` over our space-aware `mate` and `mutate`; survival is (mu + lambda) with elitism
(`selBest` over parents and offspring) and a `HallOfFame`. Fitness is lexicographic
(validation accuracy, then lower validation loss), which breaks the many accuracy ties of a
small validation set sensibly. Identical genomes are trained once (memo on the canonical
genome), and candidates are evaluated through a swappable `map`, so the loop does not care
where they run. Only this process sees results; it reports them through callbacks.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from deap import algorithms, base, creator, tools

from pipeline.candidate import CandidateResult, CandidateTask
from pipeline.genome import from_list, genome_key, genome_seed, mutate_genome, repair, sample_genome, to_list
from pipeline.params import SearchParams
from pipeline.space import SearchSpace

if not hasattr(creator, "AutoMLFitness"):
    creator.create("AutoMLFitness", base.Fitness, weights=(1.0, -1.0))
    creator.create("AutoMLIndividual", list, fitness=creator.AutoMLFitness)


@dataclass
class GenerationRecord:
    generation: int
    best: float
    mean: float
    evaluated: int
    failed: int
    seconds: float


@dataclass
class SearchOutcome:
    best_genome: dict
    best_result: CandidateResult
    hall_of_fame: list[CandidateResult]
    history: list[tuple[int, CandidateResult]]
    generations: list[GenerationRecord]
    memo_hits: int
    stop_reason: str = "completed"
    extra: dict = field(default_factory=dict)


def build_toolbox(space: SearchSpace, settings: SearchParams, input_shape: Sequence[int], rng: random.Random) -> base.Toolbox:
    """The DEAP toolbox: how to make, cross, mutate and select individuals in this space."""

    def individual():
        return creator.AutoMLIndividual(to_list(sample_genome(space, rng, input_shape), space))

    def mate(first, second):
        tools.cxUniform(first, second, indpb=0.5)
        for ind in (first, second):
            ind[:] = to_list(repair(from_list(ind, space), space, input_shape), space)
        return first, second

    def mutate(ind):
        ind[:] = to_list(mutate_genome(from_list(ind, space), space, rng, settings.gene_mutation, input_shape), space)
        return (ind,)

    toolbox = base.Toolbox()
    toolbox.register("individual", individual)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("mate", mate)
    toolbox.register("mutate", mutate)
    toolbox.register("select", tools.selTournament, tournsize=settings.tournament)
    return toolbox


def run_ga(
    space: SearchSpace,
    settings: SearchParams,
    seed: int,
    input_shape: Sequence[int],
    evaluate_map: Callable[[Sequence[CandidateTask]], list[CandidateResult]],
    on_result: Callable[[int, CandidateResult], None] | None = None,
    on_generation: Callable[[GenerationRecord], None] | None = None,
) -> SearchOutcome:
    """Evolve `settings.population` individuals for `settings.generations` generations."""
    # DEAP's operators draw from the global `random`; seed it, and use one stream for ours.
    random.seed(seed)
    rng = random._inst  # the global generator, so DEAP's draws and ours form one sequence
    toolbox = build_toolbox(space, settings, input_shape, rng)
    hall = tools.HallOfFame(settings.hall_of_fame)
    memo: dict[str, CandidateResult] = {}
    history: list[tuple[int, CandidateResult]] = []
    records: list[GenerationRecord] = []
    memo_hits = 0

    def evaluate(individuals, generation):
        nonlocal memo_hits
        started = time.perf_counter()
        tasks, seen = [], set()
        for ind in individuals:
            genome = from_list(ind, space)
            key = genome_key(genome)
            if key in memo or key in seen:
                memo_hits += 1
                continue
            seen.add(key)
            tasks.append(CandidateTask(key, genome, settings.epochs, genome_seed(seed, genome, settings.epochs)))
        results = evaluate_map(tasks)
        for result in results:
            memo[result.key] = result
            history.append((generation, result))
            if on_result:
                on_result(generation, result)
        for ind in individuals:
            ind.fitness.values = memo[genome_key(from_list(ind, space))].fitness
        return results, time.perf_counter() - started

    def record(population, generation, results, seconds):
        accuracies = [ind.fitness.values[0] for ind in population]
        entry = GenerationRecord(
            generation,
            max(accuracies),
            sum(accuracies) / len(accuracies),
            len(results),
            sum(1 for r in results if r.failure),
            seconds,
        )
        records.append(entry)
        if on_generation:
            on_generation(entry)

    def make_novel(offspring, tries=3):
        """Re-mutate offspring that repeat a trained or sibling genome, so each generation
        spends its budget on new candidates instead of memo hits (less premature convergence)."""
        seen = set()
        for ind in offspring:
            for _ in range(tries):
                key = genome_key(from_list(ind, space))
                if key not in memo and key not in seen:
                    break
                toolbox.mutate(ind)
                del ind.fitness.values
            seen.add(genome_key(from_list(ind, space)))

    population = toolbox.population(n=settings.population)
    results, seconds = evaluate(population, 0)
    hall.update(population)
    record(population, 0, results, seconds)
    for generation in range(1, settings.generations + 1):
        parents = toolbox.select(population, len(population))
        offspring = algorithms.varAnd(parents, toolbox, settings.crossover, settings.mutation)
        make_novel(offspring)
        results, seconds = evaluate(offspring, generation)
        hall.update(offspring)
        population = tools.selBest(population + offspring, settings.population)
        record(population, generation, results, seconds)

    fame = [memo[genome_key(from_list(ind, space))] for ind in hall]
    best = fame[0]
    return SearchOutcome(best.genome, best, fame, history, records, memo_hits)
