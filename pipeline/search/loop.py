"""The search loop shared by every strategy: propose, evaluate, observe, checkpoint.

A strategy (`pipeline.search.strategies`) proposes a batch of genomes per generation and is
told their standing; this loop does what all of them share: evaluation with memo and
successive halving (`Evaluator`), budgets and patience, the hall of fame, and a checkpoint
after every generation from which a killed search continues exactly where it stopped.
Only this process sees results, and it reports them through callbacks.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from pipeline.search.budget import Budget
from pipeline.search.checkpoint import (
    Checkpoint,
    load_checkpoint,
    random_state_to_json,
    restore_random_state,
    save_checkpoint,
)
from pipeline.search.evaluator import Evaluator
from pipeline.search.problem import Result, Task
from pipeline.search.scored import HallOfFame, Scored


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
    best: Scored
    hall_of_fame: list[Scored]
    history: list[tuple[int, int, Result]]  # (generation, rung, result)
    generations: list[GenerationRecord]
    memo_hits: int
    stop_reason: str
    pareto: list[Scored] = field(default_factory=list)
    resumed_from: int | None = None

    @property
    def best_genome(self) -> dict:
        return self.best.genome

    @property
    def best_result(self) -> Result:
        return self.best.result


class SearchState:
    """What a search carries from one generation to the next (and into a checkpoint)."""

    def __init__(self, settings, seed: int, evaluate_map, on_result):
        self.budget = Budget(settings)
        self.evaluator = Evaluator(settings, seed, evaluate_map, self.budget, on_result)
        self.hall = HallOfFame(settings.hall_of_fame)
        self.records: list[GenerationRecord] = []
        self.settings = settings

    def restore(self, saved: Checkpoint, strategy) -> None:
        evaluator = self.evaluator
        evaluator.memo = {k: Result.from_dict(v) for k, v in saved.memo.items()}
        evaluator.history = [(g, r, evaluator.memo[k]) for g, r, k in saved.history]
        evaluator.memo_hits = saved.memo_hits
        self.hall.items = [Scored(g, evaluator.memo[k], r) for g, k, r in saved.hall_of_fame]
        self.records = [GenerationRecord(**r) for r in saved.generations]
        self.budget = evaluator.budget = Budget(self.settings, saved.evaluations, saved.seconds, saved.epochs)
        self.budget.best_score = tuple(saved.best_score) if saved.best_score else None
        self.budget.stale_generations = saved.stale_generations
        restore_random_state(saved.random_state)
        strategy.load_state(saved.strategy_state, lambda k: evaluator.memo[k])

    def snapshot(self, params_hash: str, generation: int, strategy, stop_reason: str | None) -> Checkpoint:
        evaluator, budget = self.evaluator, self.budget
        memo_keys = {id(r): evaluator.memo_key(r.key, r.budget) for r in evaluator.memo.values()}
        return Checkpoint(
            params_hash=params_hash,
            generation=generation,
            strategy_state=strategy.state(lambda result: memo_keys[id(result)]),
            memo={k: v.as_dict() for k, v in evaluator.memo.items()},
            history=[[g, r, memo_keys[id(res)]] for g, r, res in evaluator.history],
            hall_of_fame=[[s.genome, memo_keys[id(s.result)], s.rung] for s in self.hall.items],
            generations=[asdict(r) for r in self.records],
            random_state=random_state_to_json(),
            evaluations=budget.evaluations,
            epochs=budget.epochs,
            seconds=budget.seconds,
            memo_hits=evaluator.memo_hits,
            best_score=list(budget.best_score) if budget.best_score else None,
            stale_generations=budget.stale_generations,
            stop_reason=stop_reason,
        )

    def step(self, strategy, generation: int) -> tuple[bool, GenerationRecord | None]:
        """One generation: propose, evaluate (with halving), tell the strategy, keep score.
        Returns whether anything was proposed, and the generation's record (None while
        the population is still empty, e.g. every candidate was over the budget)."""
        started = time.perf_counter()
        before = len(self.evaluator.history)
        proposals = strategy.propose(generation)
        if not proposals:
            return False, None
        scored = self.evaluator.score(proposals, generation)
        strategy.observe(generation, proposals, scored)
        self.hall.update(scored)
        fresh = [r for _, _, r in self.evaluator.history[before:]]
        population = [s for s in strategy.population() if s is not None]
        if not population:
            return True, None
        scores = [s.result.score for s in population]
        record = GenerationRecord(generation, max(scores), sum(scores) / len(scores), len(fresh),
                                  sum(1 for r in fresh if r.failure), time.perf_counter() - started)
        self.records.append(record)
        self.budget.observe_generation(max(population, key=Scored.sort_key))
        return True, record


def search_loop(
    strategy,
    settings,
    seed: int,
    evaluate_map: Callable[[Sequence[Task]], list[Result]],
    *,
    params_hash: str = "",
    checkpoint_path: Path | None = None,
    on_result: Callable[[int, int, Result], None] | None = None,
    on_generation: Callable[[GenerationRecord], None] | None = None,
    log: Callable[[str], None] = print,
) -> SearchOutcome:
    """Run `strategy` until its generations or a budget run out; resume from a checkpoint."""
    random.seed(seed)
    state = SearchState(settings, seed, evaluate_map, on_result)
    generation, resumed_from, stop_reason = 0, None, None
    saved = load_checkpoint(checkpoint_path, params_hash, log) if checkpoint_path else None
    if saved:
        state.restore(saved, strategy)
        generation, resumed_from, stop_reason = saved.generation + 1, saved.generation, saved.stop_reason
        log(f"search: resuming after generation {saved.generation} from {checkpoint_path}")
    last = strategy.last_generation()
    while stop_reason is None and generation <= last:
        proposed, record = state.step(strategy, generation)
        if not proposed:
            stop_reason = "search space exhausted"
            break
        if record and on_generation:
            on_generation(record)
        stop_reason = state.budget.exhausted() if generation < last else None
        if checkpoint_path:
            save_checkpoint(checkpoint_path, state.snapshot(params_hash, generation, strategy, stop_reason))
        generation += 1
    if not state.hall.items:
        raise RuntimeError("the search evaluated no candidate (is max_evaluations 0 or the time budget too small?)")
    return SearchOutcome(
        best=strategy.pick_best(state.hall.items),
        hall_of_fame=list(state.hall.items),
        history=state.evaluator.history,
        generations=state.records,
        memo_hits=state.evaluator.memo_hits,
        stop_reason=stop_reason or "completed",
        pareto=strategy.pareto_front(),
        resumed_from=resumed_from,
    )
