"""Evaluation with a memo, the candidate store and successive halving, through a swappable map.

Each (genome, budget) is evaluated once: a genome proposed again within the search is a
memo hit; one evaluated by any earlier search of the project is taken from the store
(`reused`) and counts against the budgets exactly as if it had been trained, so a search
that reuses results makes the same decisions as one that trains everything. With several
rungs (`search.fidelity`), the proposals of a generation race: all get the first rung, the
best 1/eta go on. Candidates reach the backend as `Task`s whose seed derives from the run
seed, the genome and the budget (DEAP's `onemax_mp.py` pattern: the map decides where
they run, never what they compute). Results are written to the store as they arrive, so a
search killed mid-generation loses at most the candidates still training.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from pipeline.search.budget import Budget
from pipeline.search.problem import Result, Task
from pipeline.search.scored import Scored
from pipeline.search.space import derive_seed, genome_key
from pipeline.search.store import ResultStore


class Evaluator:
    def __init__(self, settings, seed: int, evaluate_map: Callable[..., list[Result]], budget: Budget,
                 on_result=None, store: ResultStore | None = None):
        self.settings, self.seed, self.map, self.budget, self.on_result = settings, seed, evaluate_map, budget, on_result
        self.store = store
        self.memo: dict[str, Result] = {}
        self.history: list[tuple[int, int, Result]] = []
        self.memo_hits = 0
        self.reused = 0

    @staticmethod
    def memo_key(key: str, budget: int) -> str:
        return f"{budget}|{key}"

    def train(self, genomes: Sequence[dict], rung: int, generation: int) -> list[Result | None]:
        """Results for each genome at rung `rung` (None where the budget ran out)."""
        budget = self.settings.budgets[rung]
        queued: list[tuple[Task, Result | None]] = []
        keys = set()
        for genome in genomes:
            key = genome_key(genome)
            memo_key = self.memo_key(key, budget)
            if memo_key in self.memo or memo_key in keys:
                self.memo_hits += 1
                continue
            if not self.budget.affords(len(queued), len(queued) * budget, budget):
                continue
            keys.add(memo_key)
            task = Task(key, genome, budget, derive_seed(self.seed, key, budget))
            queued.append((task, self.store.get(task) if self.store else None))
        fresh = [task for task, stored in queued if stored is None]
        trained = iter(self.map(fresh, done=self._keep) if fresh else [])
        for task, stored in queued:
            result = stored or next(trained)
            self.memo[self.memo_key(result.key, budget)] = result
            self.history.append((generation, rung, result))
            self.budget.evaluations += 1
            self.budget.epochs += result.budget
            if stored:
                self.reused += 1
                self.budget.credit(stored.seconds)
            if self.on_result:
                self.on_result(generation, rung, result, stored is not None)
        return [self.memo.get(self.memo_key(genome_key(g), budget)) for g in genomes]

    def _keep(self, task: Task, result: Result) -> None:
        """Called by the backend as each result arrives: into the store at once."""
        if self.store and result.failure != "worker_lost":
            self.store.put(task, result)

    def score(self, genomes: Sequence[dict], generation: int) -> list[Scored | None]:
        """Successive halving over `genomes` (plain evaluation when there is one rung)."""
        standing: list[Scored | None] = [None] * len(genomes)
        alive = list(range(len(genomes)))
        for rung in range(len(self.settings.budgets)):
            results = self.train([genomes[i] for i in alive], rung, generation)
            for index, result in zip(alive, results):
                if result is not None:
                    standing[index] = Scored(genomes[index], result, rung)
            evaluated = [i for i, r in zip(alive, results) if r is not None and not r.failure]
            keep = math.ceil(len(evaluated) / self.settings.fidelity.eta)
            evaluated.sort(key=lambda i: standing[i].sort_key(), reverse=True)
            alive = sorted(evaluated[:keep])
            if len(alive) == 0 or rung + 1 == len(self.settings.budgets):
                break
        return standing
