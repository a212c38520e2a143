"""The search loop shared by every strategy: propose, evaluate, observe, record.

A strategy (`pipeline.search.strategies`) proposes a batch of genomes per generation and is
told their standing; this loop does what all of them share: evaluation with memo, store
and successive halving (`Evaluator`), the archive of every standing (whose head is the hall
of fame and the best so far), budgets and patience, and the search record after every
generation. Everything is seeded and every result derives from its task, so running the
loop again with the store replays the same trajectory without training anything twice:
that is how a killed search resumes and a finished one extends. Only this process sees
results, and it reports them through callbacks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.search.budget import Budget
from pipeline.search.evaluator import Evaluator
from pipeline.search.problem import Result
from pipeline.search.record import SearchRecord, explain, load_record, save_record
from pipeline.search.scored import Archive, Scored, averaged
from pipeline.search.store import ResultStore


@dataclass
class GenerationRecord:
    """One generation: the best standing so far (never falls), the incumbent's standing now
    (the genome the search would return; below `best` when re-evaluating a lucky genome
    lowered its mean, or when a higher rung's score replaced a lower rung's), the best and mean finished score of the strategy's current
    population, and what the generation evaluated."""

    generation: int
    best: float
    population_best: float
    mean: float
    evaluated: int
    failed: int
    seconds: float
    reused: int = 0
    incumbent: float = 0.0


@dataclass
class SearchOutcome:
    best: Scored
    hall_of_fame: list[Scored]
    history: list[tuple[int, int, Result]]  # (generation, rung, result)
    generations: list[GenerationRecord]
    memo_hits: int
    stop_reason: str
    pareto: list[Scored] = field(default_factory=list)
    reused: int = 0  # results taken from the store instead of trained
    epochs_spent: float = 0.0  # budget units spent (continuing rungs count only their extra epochs)
    cost_spent: float = 0.0  # the results' costs (`Result.spent`), what `max_cost` limits
    seconds_spent: float = 0.0  # wall seconds, results taken from the store counted at their own time

    @property
    def trained(self) -> int:
        return len(self.history) - self.reused

    @property
    def best_genome(self) -> dict:
        return self.best.genome

    @property
    def best_result(self) -> Result:
        return self.best.result


class SearchState:
    """What a search carries from one generation to the next."""

    def __init__(self, settings, seed: int, evaluate_map, on_result, store: ResultStore | None, cost_of=None,
                 deterministic: bool = False):
        self.settings = settings
        self.budget = Budget(settings)
        self.evaluator = Evaluator(settings, seed, evaluate_map, self.budget, on_result, store, cost_of)
        self.archive = Archive()
        self.records: list[GenerationRecord] = []
        self.deterministic = deterministic

    def confirm_incumbent(self, generation: int) -> None:
        """With `incumbent_evaluations` > 1, evaluate the best genome again with other seeds
        until it has that many evaluations; its standing becomes their mean, so a genome that
        only looked best on one lucky evaluation falls back. Not for a deterministic problem."""
        times = self.settings.incumbent_evaluations
        incumbent = self.archive.incumbent()
        if times > 1 and not self.deterministic and incumbent is not None and not incumbent.failed:
            self.archive.replace(averaged(incumbent, self.evaluator.confirm(incumbent, times, generation)))

    def step(self, strategy, generation: int) -> tuple[bool, GenerationRecord | None]:
        """One generation: propose, evaluate (with halving), tell the strategy, keep score.
        Returns whether anything was proposed, and the generation's record (None while
        nothing has finished, e.g. every candidate was over the budget or failed)."""
        started = time.perf_counter()
        before, reused_before = len(self.evaluator.history), self.evaluator.reused
        proposals = strategy.propose(generation, self.archive)
        if not proposals:
            return False, None
        self.archive.mark_proposed(proposals)
        scored = self.evaluator.score(proposals, generation)
        self.archive.add(scored)
        strategy.observe(generation, scored, self.archive)
        self.confirm_incumbent(generation)
        fresh = [r for _, _, r in self.evaluator.history[before:]]
        incumbent = self.archive.incumbent()
        population = [s.result.score for s in strategy.population(self.archive) if s is not None and not s.failed]
        if incumbent is None or incumbent.failed:
            return True, None
        standing = incumbent.result.score
        record = GenerationRecord(generation, max(standing, self.records[-1].best) if self.records else standing,
                                  max(population, default=standing),
                                  sum(population) / len(population) if population else standing,
                                  len(fresh), sum(1 for r in fresh if r.failed), time.perf_counter() - started,
                                  self.evaluator.reused - reused_before, incumbent=standing)
        self.records.append(record)
        self.budget.observe_generation(incumbent)
        return True, record


def search_loop(
    strategy,
    settings,
    seed: int,
    evaluate_map: Callable[..., list[Result]],
    *,
    store: ResultStore | None = None,
    record_path: Path | None = None,
    identity: dict | None = None,
    on_result: Callable[[int, int, Result, bool], None] | None = None,
    on_generation: Callable[[GenerationRecord], None] | None = None,
    log: Callable[[str], None] = print,
    cost_of: Callable[[dict, float], float | None] | None = None,
    deterministic: bool = False,
) -> SearchOutcome:
    """Run `strategy` until its generations or a budget run out; `cost_of(genome, epochs)`
    predicts a training's cost so that `max_cost` is never overspent; a `deterministic`
    problem's incumbent is never evaluated again."""
    state = SearchState(settings, seed, evaluate_map, on_result, store, cost_of, deterministic)
    if record_path:
        explain(load_record(record_path), identity or {}, log)
    last = strategy.last_generation()
    generation, stop_reason = 0, None
    try:
        while stop_reason is None and generation <= last:
            proposed, record = state.step(strategy, generation)
            if not proposed:
                stop_reason = "search space exhausted"
                break
            if record and on_generation:
                on_generation(record)
            stop_reason = state.budget.exhausted() if generation < last else None
            if record_path:
                evaluator = state.evaluator
                save_record(record_path, SearchRecord(identity or {}, generation, last, len(evaluator.history),
                                                      len(evaluator.history) - evaluator.reused, evaluator.reused,
                                                      stop_reason))
            generation += 1
    finally:
        state.evaluator.close()
    if not len(state.archive):
        raise RuntimeError("the search evaluated no candidate (is max_evaluations 0 or the time budget too small?)")
    return SearchOutcome(
        best=strategy.pick_best(state.archive),
        hall_of_fame=state.archive.best(settings.hall_of_fame),
        history=state.evaluator.history,
        generations=state.records,
        memo_hits=state.evaluator.memo_hits,
        stop_reason=stop_reason or "completed",
        pareto=strategy.pareto_front(state.archive),
        reused=state.evaluator.reused,
        epochs_spent=state.budget.epochs,
        cost_spent=state.budget.cost,
        seconds_spent=state.budget.seconds,
    )
