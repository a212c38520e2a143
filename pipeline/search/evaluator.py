"""Evaluation with a memo and successive halving, through a swappable `map`.

Each (genome, budget) is evaluated once: a genome proposed again is a memo hit. With
several rungs (`search.fidelity`), the proposals of a generation race: all get the first
rung, the best 1/eta go on. Candidates reach `evaluate_map` (a backend) as `Task`s whose
seed derives from the run seed, the genome and the budget (DEAP's `onemax_mp.py` pattern:
the map decides where they run, never what they compute).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from pipeline.search.budget import Budget
from pipeline.search.problem import Result, Task
from pipeline.search.scored import Scored
from pipeline.search.space import derive_seed, genome_key


class Evaluator:
    def __init__(self, settings, seed: int, evaluate_map: Callable[[Sequence[Task]], list[Result]], budget: Budget,
                 on_result=None):
        self.settings, self.seed, self.map, self.budget, self.on_result = settings, seed, evaluate_map, budget, on_result
        self.memo: dict[str, Result] = {}
        self.history: list[tuple[int, int, Result]] = []
        self.memo_hits = 0

    @staticmethod
    def memo_key(key: str, budget: int) -> str:
        return f"{budget}|{key}"

    def train(self, genomes: Sequence[dict], rung: int, generation: int) -> list[Result | None]:
        """Results for each genome at rung `rung` (None where the budget ran out)."""
        budget = self.settings.budgets[rung]
        tasks, queued = [], set()
        for genome in genomes:
            key = genome_key(genome)
            memo_key = self.memo_key(key, budget)
            if memo_key in self.memo or memo_key in queued:
                self.memo_hits += 1
                continue
            if not self.budget.affords(len(tasks), len(tasks) * budget, budget):
                continue
            queued.add(memo_key)
            tasks.append(Task(key, genome, budget, derive_seed(self.seed, key, budget)))
        for result in self.map(tasks) if tasks else []:
            self.memo[self.memo_key(result.key, budget)] = result
            self.history.append((generation, rung, result))
            self.budget.evaluations += 1
            self.budget.epochs += result.budget
            if self.on_result:
                self.on_result(generation, rung, result)
        return [self.memo.get(self.memo_key(genome_key(g), budget)) for g in genomes]

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
