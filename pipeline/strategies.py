"""Search strategies: what to try next, given what was learned.

Each strategy proposes a batch of genomes per generation and is told their standing
(`Scored`); `pipeline.search.run_search` does the rest. The genetic ones use DEAP for what
it already does: `creator` classes defined once at import, `selTournament`, `cxUniform`,
`varAnd`, `selBest`, `selNSGA2`, `selTournamentDCD` and `sortNondominated`. Random search
samples, grid search enumerates the finite choices, TPE asks Optuna. All draw from the
global `random` generator that `run_search` seeds and checkpoints (DEAP's operators use it).
"""
from __future__ import annotations

import itertools
import math
import random
from typing import Callable, Sequence

from deap import algorithms, base, creator, tools

from pipeline.errors import ConfigError
from pipeline.genome import from_list, genome_key, mutate_genome, repair, sample_genome, to_list
from pipeline.params import SearchParams
from pipeline.search import Scored
from pipeline.space import FloatRange, IntRange, SearchSpace

if not hasattr(creator, "AutoMLFitness"):
    # Single objective, lexicographic: (rung + accuracy) up, then validation loss down.
    creator.create("AutoMLFitness", base.Fitness, weights=(1.0, -1.0))
    creator.create("AutoMLIndividual", list, fitness=creator.AutoMLFitness)


def _multi_fitness(objectives: Sequence[str]):
    """A DEAP fitness class for these objectives: maximize accuracy, minimize the others."""
    name = "AutoMLFitness_" + "_".join(objectives)
    if not hasattr(creator, name):
        creator.create(name, base.Fitness, weights=tuple(1.0 if o == "accuracy" else -1.0 for o in objectives))
        creator.create("AutoMLIndividual_" + "_".join(objectives), list, fitness=getattr(creator, name))
    return getattr(creator, "AutoMLIndividual_" + "_".join(objectives))


class Strategy:
    """Defaults shared by every strategy: a best-so-far population and single-objective picks."""

    def __init__(self, space: SearchSpace, settings: SearchParams, input_shape: Sequence[int]):
        self.space, self.settings, self.input_shape = space, settings, input_shape
        self.pop: list[Scored] = []
        self.seen: set[str] = set()

    def last_generation(self) -> int:
        return self.settings.generations

    def population(self) -> list[Scored]:
        return self.pop

    def observe(self, generation: int, proposals: Sequence[dict], scored: Sequence[Scored | None]) -> None:
        self.pop = sorted(self.pop + [s for s in scored if s], key=Scored.sort_key, reverse=True)
        self.pop = self.pop[: self.settings.population]

    def pick_best(self, hall: Sequence[Scored]) -> Scored:
        return hall[0]

    def pareto_front(self) -> list[Scored]:
        return []

    def fresh_samples(self, count: int) -> list[dict]:
        """`count` genomes not proposed before (a few retries each, then duplicates allowed)."""
        out = []
        for _ in range(count):
            for _ in range(20):
                genome = sample_genome(self.space, random, self.input_shape)
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


class GeneticStrategy(Strategy):
    """(mu + lambda) GA: tournament parents, uniform crossover and mutation (varAnd),
    offspring that repeat an earlier genome mutated again, survivors by `selBest`."""

    individual_class = creator.AutoMLIndividual

    def __init__(self, space, settings, input_shape):
        super().__init__(space, settings, input_shape)
        self.toolbox = base.Toolbox()
        self.toolbox.register("mate", self._mate)
        self.toolbox.register("mutate", self._mutate)

    def _mate(self, first, second):
        tools.cxUniform(first, second, indpb=0.5)
        for ind in (first, second):
            ind[:] = to_list(repair(from_list(ind, self.space), self.space, self.input_shape), self.space)
        return first, second

    def _mutate(self, ind):
        genome = mutate_genome(from_list(ind, self.space), self.space, random, self.settings.gene_mutation, self.input_shape)
        ind[:] = to_list(genome, self.space)
        return (ind,)

    def fitness_values(self, scored: Scored) -> tuple:
        return (scored.score, scored.result.val_loss)

    def individuals(self, scored: Sequence[Scored]) -> list:
        out = []
        for entry in scored:
            ind = self.individual_class(to_list(entry.genome, self.space))
            ind.fitness.values = self.fitness_values(entry)
            ind.scored = entry
            out.append(ind)
        return out

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
                if genome_key(from_list(ind, self.space)) not in self.seen:
                    break
                self.toolbox.mutate(ind)
            genome = from_list(ind, self.space)
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
    member (rung + validation accuracy), ties broken by the next objectives in order.
    """

    def __init__(self, space, settings, input_shape):
        super().__init__(space, settings, input_shape)
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

    def state(self, key_of):
        state = super().state(key_of)
        state["archive"] = [[s.genome, key_of(s.result), s.rung] for s in self.archive.values()]
        return state

    def load_state(self, state, result_of):
        super().load_state(state, result_of)
        self.archive = {genome_key(g): Scored(g, result_of(k), r) for g, k, r in state["archive"]}


class RandomStrategy(Strategy):
    """Independent samples, `population` per generation; the population is the best so far."""

    def propose(self, generation: int) -> list[dict]:
        return self.fresh_samples(self.settings.population)


def grid_size(space: SearchSpace) -> float:
    """How many points the grid has; infinite when a real-valued gene is a range."""
    size = 1
    for _, gene in space.genes:
        values = gene.values()
        if values is None and not gene.pinned:
            return math.inf
        size *= len(values) if values is not None else 1
    return size


def check_grid(space: SearchSpace, settings: SearchParams) -> None:
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

    def __init__(self, space, settings, input_shape):
        super().__init__(space, settings, input_shape)
        self.position = 0
        self.total = grid_size(space)

    def last_generation(self) -> int:
        return 10**9  # a grid runs until it is exhausted (its size was checked against the budget)

    def _points(self):
        axes = [gene.values() if gene.values() is not None else [gene.low] for _, gene in self.space.genes]
        return itertools.product(*axes)

    def propose(self, generation):
        out = []
        points = itertools.islice(self._points(), self.position, None)
        for values in points:
            self.position += 1
            genome = repair(dict(zip(self.space.names, values)), self.space, self.input_shape)
            if genome_key(genome) in self.seen:
                continue
            self.seen.add(genome_key(genome))
            out.append(genome)
            if len(out) == self.settings.population:
                break
        return out

    def state(self, key_of):
        return dict(super().state(key_of), position=self.position)

    def load_state(self, state, result_of):
        super().load_state(state, result_of)
        self.position = state["position"]


class TPEStrategy(Strategy):
    """Optuna's TPE sampler proposing genomes over the same space (ask/tell, `population`
    trials per generation). A resumed TPE search replays its trials into a new study, so it
    continues but is not bit-identical to an uninterrupted one (the sampler's RNG restarts)."""

    def __init__(self, space, settings, input_shape, seed: int):
        super().__init__(space, settings, input_shape)
        try:
            import optuna
        except ImportError:
            raise ConfigError("search.algorithm: tpe needs Optuna: pip install 'automl-pipeline[tpe]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.seed = seed
        self.distributions = {name: self._distribution(gene) for name, gene in space.genes}
        self.study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        self.pending = []
        self.trials: list[list] = []

    def _distribution(self, gene):
        d = self.optuna.distributions
        if isinstance(gene, IntRange):
            return d.IntDistribution(gene.low, gene.high)
        if isinstance(gene, FloatRange):
            return d.FloatDistribution(gene.low, gene.high, log=gene.log)
        return d.CategoricalDistribution(list(gene.options))

    def propose(self, generation):
        self.pending = [self.study.ask(self.distributions) for _ in range(self.settings.population)]
        return [repair(dict(trial.params), self.space, self.input_shape) for trial in self.pending]

    def observe(self, generation, proposals, scored):
        super().observe(generation, proposals, scored)
        for trial, entry in zip(self.pending, scored):
            if entry is None or entry.result.failure:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
                self.trials.append([trial.params, None])
            else:
                self.study.tell(trial, entry.score)
                self.trials.append([trial.params, entry.score])

    def state(self, key_of):
        return dict(super().state(key_of), trials=self.trials)

    def load_state(self, state, result_of):
        super().load_state(state, result_of)
        self.trials = state["trials"]
        state_of = self.optuna.trial.TrialState
        for params, value in self.trials:
            self.study.add_trial(self.optuna.trial.create_trial(
                params=params, distributions=self.distributions, value=value,
                state=state_of.COMPLETE if value is not None else state_of.FAIL,
            ))
        self.study.sampler = self.optuna.samplers.TPESampler(seed=self.seed + len(self.trials))


def make_strategy(space: SearchSpace, settings: SearchParams, input_shape: Sequence[int], seed: int) -> Strategy:
    if settings.algorithm == "ga":
        return GeneticStrategy(space, settings, input_shape)
    if settings.algorithm == "nsga2":
        return NSGA2Strategy(space, settings, input_shape)
    if settings.algorithm == "random":
        return RandomStrategy(space, settings, input_shape)
    if settings.algorithm == "grid":
        return GridStrategy(space, settings, input_shape)
    return TPEStrategy(space, settings, input_shape, seed)
