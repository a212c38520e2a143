"""Evaluation with a memo, the candidate store and successive halving, through a swappable map.

Each (genome, budget) is evaluated once: a genome proposed again within the search is a
memo hit; one evaluated by any earlier search of the project is taken from the store
(`reused`) and counts against the budgets exactly as if it had been trained, so a search
that reuses results makes the same decisions as one that trains everything. Candidates
reach the backend as `Task`s whose seed derives from the run seed, the genome and the
budget (DEAP's `onemax_mp.py` pattern: the map decides where they run, never what they
compute). Results are written to the store as they arrive, so a search killed
mid-generation loses at most the candidates still training.

With several rungs (`search.fidelity`), the proposals of a generation race: all get the
first rung, the best 1/eta go on. In `continue` mode a promoted candidate resumes from the
state it kept at the lower rung, under one learning-rate schedule laid over the top rung,
so reaching the top is exactly one uninterrupted training and a rung costs only its extra
epochs; `restart` trains every rung from scratch with a schedule scaled to that rung.
With `brackets: hyperband`, generation g starts its race at rung g mod (number of rungs),
with 1/eta^start of the proposals (Li et al.'s brackets: several minimum budgets).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from pipeline.search.budget import Budget
from pipeline.search.problem import Result, Task
from pipeline.search.rungs import RungStates
from pipeline.search.scored import Scored
from pipeline.search.space import derive_seed, genome_key
from pipeline.search.store import ResultStore


CostOf = Callable[[dict, float], "float | None"]


class Evaluator:
    def __init__(self, settings, seed: int, evaluate_map: Callable[..., list[Result]], budget: Budget,
                 on_result=None, store: ResultStore | None = None, cost_of: CostOf | None = None):
        self.settings, self.seed, self.map, self.budget, self.on_result = settings, seed, evaluate_map, budget, on_result
        self.store = store
        self.cost_of = cost_of or (lambda genome, epochs: None)
        self.memo: dict[str, Result] = {}
        self.history: list[tuple[int, int, Result]] = []
        self.memo_hits = 0
        self.reused = 0
        self.budgets = tuple(settings.budgets)
        self.continued = len(self.budgets) > 1 and settings.fidelity.mode == "continue"
        self.states = RungStates()
        self.repeats: dict[str, list[Result]] = {}  # memo key -> every evaluation of a repeated genome

    def memo_key(self, key: str, budget: float) -> str:
        return f"{budget}|{self.budgets[-1]}|{key}" if self.continued else f"{budget}|{key}"

    def epochs_of(self, rung: int, start: int) -> float:
        """Epochs a training at `rung` spends (nominally: continuing from the rung below)."""
        below = self.budgets[rung - 1] if self.continued and rung > start else 0
        return self.budgets[rung] - below

    def task(self, genome: dict, key: str, rung: int, start: int) -> Task:
        budget = self.budgets[rung]
        if not self.continued:
            return Task(key, genome, budget, derive_seed(self.seed, key, budget))
        horizon = self.budgets[-1]
        resume = self.states.take(self.memo_key(key, self.budgets[rung - 1])) if rung > start else None
        # One seed for every rung of a candidate: its rungs are stretches of one training.
        return Task(key, genome, budget, derive_seed(self.seed, key, horizon), horizon, resume,
                    keep_state=rung + 1 < len(self.budgets))

    def train(self, genomes: Sequence[dict], rung: int, generation: int, start: int = 0) -> list[Result | None]:
        """Results for each genome at rung `rung` (None where the budget ran out)."""
        budget, epochs = self.budgets[rung], self.epochs_of(rung, start)
        queued: list[tuple[Task, Result | None]] = []
        keys, queued_cost = set(), 0.0
        for genome in genomes:
            key = genome_key(genome)
            memo_key = self.memo_key(key, budget)
            if memo_key in self.memo or memo_key in keys:
                self.memo_hits += 1
                continue
            predicted = self.cost_of(genome, epochs)
            if not self.budget.affords(len(queued), len(queued) * epochs, epochs, queued_cost, predicted):
                continue
            queued_cost += predicted or 0.0
            keys.add(memo_key)
            task = self.task(genome, key, rung, start)
            queued.append((task, self.store.get(task) if self.store else None))
        for task, result in zip((task for task, _ in queued), self._run(queued, generation, rung, epochs)):
            if result.state is not None:
                self.states.put(self.memo_key(task.key, budget), result.state)
                result.state = None
            self.memo[self.memo_key(result.key, budget)] = result
        return [self.memo.get(self.memo_key(genome_key(g), budget)) for g in genomes]

    def _run(self, queued: list[tuple[Task, Result | None]], generation: int, rung: int, epochs: float) -> list[Result]:
        """Results of queued tasks (stored ones as they are, the rest through the map), each
        recorded in the history and counted against the budgets."""
        fresh = [task for task, stored in queued if stored is None]
        trained = iter(self.map(fresh, done=self._keep) if fresh else [])
        out = []
        for task, stored in queued:
            result = stored or next(trained)
            self.history.append((generation, rung, result))
            self.budget.evaluations += 1
            self.budget.epochs += epochs
            self.budget.cost += result.spent
            if stored:
                self.reused += 1
                self.budget.credit(stored.seconds)
            if self.on_result:
                self.on_result(generation, rung, result, stored is not None)
            out.append(result)
        return out

    def confirm(self, standing: Scored, times: int, generation: int) -> list[Result]:
        """Every evaluation of a genome at its standing's rung, after evaluating it again
        (each repeat a fresh, whole training with a seed of its own) until it has `times`
        of them or the budget stops."""
        key, budget = standing.key, self.budgets[standing.rung]
        done = self.repeats.setdefault(self.memo_key(key, budget), [standing.result])
        while len(done) < times and self.budget.affords(0, 0, budget, cost=self.cost_of(standing.genome, budget)):
            seed = derive_seed(self.seed, key, f"{self.budgets[-1] if self.continued else budget}|repeat{len(done)}")
            task = Task(key, standing.genome, budget, seed)
            done.extend(self._run([(task, self.store.get(task) if self.store else None)], generation, standing.rung,
                                  budget))
        return list(done)

    def _keep(self, task: Task, result: Result) -> None:
        """Called by the backend as each result arrives: into the store at once."""
        if self.store and result.failure != "worker_lost":
            self.store.put(task, result)

    def first_rung(self, generation: int) -> int:
        return generation % len(self.budgets) if self.settings.fidelity.brackets == "hyperband" else 0

    def score(self, genomes: Sequence[dict], generation: int) -> list[Scored | None]:
        """Successive halving over `genomes` (plain evaluation when there is one rung)."""
        standing: list[Scored | None] = [None] * len(genomes)
        start = self.first_rung(generation)
        eta = self.settings.fidelity.eta
        alive = list(range(min(len(genomes), math.ceil(len(genomes) / eta**start))))
        for rung in range(start, len(self.budgets)):
            results = self.train([genomes[i] for i in alive], rung, generation, start)
            for index, result in zip(alive, results):
                if result is not None:
                    standing[index] = Scored(genomes[index], result, rung)
            evaluated = [i for i, r in zip(alive, results) if r is not None and not r.failure]
            evaluated.sort(key=lambda i: standing[i].sort_key(), reverse=True)
            promoted = set(evaluated[: math.ceil(len(evaluated) / eta)])
            for index in alive:
                if index not in promoted:
                    self.states.discard(self.memo_key(genome_key(genomes[index]), self.budgets[rung]))
            alive = sorted(promoted)
            if not alive or rung + 1 == len(self.budgets):
                break
        return standing

    def close(self) -> None:
        self.states.close()
