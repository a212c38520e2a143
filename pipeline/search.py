"""The search loop shared by every algorithm: evaluation, memo, budgets, checkpoints.

A `Strategy` (see `pipeline.strategies`: DEAP's GA and NSGA-II, random, grid, Optuna's TPE)
proposes a batch of genomes per generation and is told their scores. This module does what
all of them share: it trains each (genome, epoch budget) once (memo), runs successive
halving when `search.fidelity` is on, counts evaluations and time against the budgets,
stops on patience, keeps the hall of fame, and writes a JSON checkpoint after every
generation holding everything needed to continue exactly where it stopped (population,
memo, history, hall of fame, logbook, the random state). Candidates are evaluated through a
swappable `map` (DEAP's `onemax_mp.py` pattern); only this process sees results, and it
reports them through callbacks.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from pipeline.candidate import CandidateResult, CandidateTask
from pipeline.fileio import write_text
from pipeline.genome import genome_key, genome_seed
from pipeline.params import SearchParams

CHECKPOINT_FORMAT = "automl-search-checkpoint/1"


@dataclass
class Scored:
    """A genome's standing: the result at the highest rung it reached, and that rung."""

    genome: dict
    result: CandidateResult
    rung: int = 0

    @property
    def score(self) -> float:
        """Rung first, then accuracy: a candidate that survived to a larger budget outranks
        every candidate eliminated earlier; within a rung, accuracy at that rung's budget."""
        return self.rung + self.result.val_accuracy

    def objectives(self, names: Sequence[str]) -> tuple[float, ...]:
        values = {
            "accuracy": self.score,
            "params": float(self.result.params) if not self.result.failure else math.inf,
            "flops": float(self.result.flops) if not self.result.failure else math.inf,
            "latency": self.result.latency_ms if not self.result.failure else math.inf,
        }
        return tuple(values[name] for name in names)

    def sort_key(self) -> tuple[float, float]:
        return (self.score, -self.result.val_loss)


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
    history: list[tuple[int, int, CandidateResult]]  # (generation, rung, result)
    generations: list[GenerationRecord]
    memo_hits: int
    stop_reason: str
    pareto: list[Scored] = field(default_factory=list)
    resumed_from: int | None = None

    @property
    def best_genome(self) -> dict:
        return self.best.genome

    @property
    def best_result(self) -> CandidateResult:
        return self.best.result


class Budget:
    """Evaluations, wall time and patience; `exhausted()` says why the search must stop."""

    def __init__(self, settings: SearchParams, spent_evaluations: int = 0, spent_seconds: float = 0.0, spent_epochs: int = 0):
        self.settings = settings
        self.evaluations = spent_evaluations
        self.epochs = spent_epochs
        self.started = time.monotonic() - spent_seconds
        self.best_score: tuple | None = None
        self.stale_generations = 0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def remaining_evaluations(self) -> int | None:
        limit = self.settings.max_evaluations
        return None if not limit else max(0, limit - self.evaluations)

    def affords(self, queued: int, queued_epochs: int, epochs: int) -> bool:
        """Whether one more training of `epochs` fits after `queued` already queued ones."""
        remaining = self.remaining_evaluations()
        if remaining is not None and queued >= remaining:
            return False
        limit = self.settings.max_epochs
        return not limit or self.epochs + queued_epochs + epochs <= limit

    def observe_generation(self, best: Scored) -> None:
        key = best.sort_key()
        if self.best_score is None or key > self.best_score:
            self.best_score, self.stale_generations = key, 0
        else:
            self.stale_generations += 1

    def exhausted(self) -> str | None:
        if self.remaining_evaluations() == 0:
            return f"max_evaluations ({self.settings.max_evaluations}) reached"
        if self.settings.max_epochs and self.epochs + min(self.settings.budgets) > self.settings.max_epochs:
            return f"max_epochs ({self.settings.max_epochs}) reached"
        if self.settings.time_budget and self.seconds >= self.settings.time_budget:
            return f"time_budget ({self.settings.time_budget:g} s) reached"
        if self.settings.patience and self.stale_generations >= self.settings.patience:
            return f"patience: no improvement in {self.settings.patience} generations"
        return None


class Evaluator:
    """Trains genomes at a budget through `evaluate_map`, once per (genome, budget)."""

    def __init__(self, settings: SearchParams, seed: int, evaluate_map, budget: Budget, on_result=None):
        self.settings, self.seed, self.map, self.budget, self.on_result = settings, seed, evaluate_map, budget, on_result
        self.memo: dict[str, CandidateResult] = {}
        self.history: list[tuple[int, int, CandidateResult]] = []
        self.memo_hits = 0

    @staticmethod
    def memo_key(key: str, epochs: int) -> str:
        return f"{epochs}|{key}"

    def train(self, genomes: Sequence[dict], rung: int, generation: int) -> list[CandidateResult | None]:
        """Results for each genome at rung `rung` (None where the evaluation budget ran out)."""
        epochs = self.settings.budgets[rung]
        tasks, queued = [], set()
        for genome in genomes:
            key = genome_key(genome)
            memo_key = self.memo_key(key, epochs)
            if memo_key in self.memo or memo_key in queued:
                self.memo_hits += 1
                continue
            if not self.budget.affords(len(tasks), len(tasks) * epochs, epochs):
                continue
            queued.add(memo_key)
            tasks.append(CandidateTask(key, genome, epochs, genome_seed(self.seed, genome, epochs)))
        for result in self.map(tasks) if tasks else []:
            self.memo[self.memo_key(result.key, epochs)] = result
            self.history.append((generation, rung, result))
            self.budget.evaluations += 1
            self.budget.epochs += result.epochs
            if self.on_result:
                self.on_result(generation, rung, result)
        return [self.memo.get(self.memo_key(genome_key(g), epochs)) for g in genomes]

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


@dataclass
class Checkpoint:
    """What a resumed search needs; JSON, written atomically after every generation."""

    params_hash: str
    generation: int
    strategy_state: dict
    memo: dict
    history: list
    hall_of_fame: list  # [[genome, memo_key, rung], ...]
    generations: list
    random_state: list
    evaluations: int
    epochs: int
    seconds: float
    memo_hits: int
    best_score: list | None
    stale_generations: int
    stop_reason: str | None = None
    format: str = CHECKPOINT_FORMAT


def _random_state_to_json(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _random_state_from_json(data) -> tuple:
    return (data[0], tuple(data[1]), data[2])


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Atomic write; the previous checkpoint is kept as a fallback for a corrupt latest."""
    path = Path(path)
    if path.exists():
        previous = path.with_name("previous.json")
        path.replace(previous)
    write_text(path, json.dumps(asdict(checkpoint)))


def load_checkpoint(path: Path, params_hash: str, log: Callable[[str], None]) -> Checkpoint | None:
    """The latest usable checkpoint made under the same params, else None (with a message)."""
    path = Path(path)
    for candidate in (path, path.with_name("previous.json")):
        if not candidate.exists():
            continue
        try:
            data = json.loads(candidate.read_text())
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("unknown format")
            checkpoint = Checkpoint(**data)
        except (ValueError, TypeError, OSError) as err:
            log(f"search: {candidate} is unreadable ({err}); trying the previous checkpoint")
            continue
        if checkpoint.params_hash != params_hash:
            log(f"search: {candidate} was made with different search params; starting afresh")
            return None
        return checkpoint
    return None


class HallOfFame:
    """The `size` best (genome, budget) results ever seen, best first (stable on ties)."""

    def __init__(self, size: int):
        self.size = size
        self.items: list[Scored] = []

    def update(self, scored: Sequence[Scored | None]) -> None:
        """Add new standings; a genome appears once, at the best standing it reached."""
        by_genome = {genome_key(s.genome): s for s in self.items}
        for entry in scored:
            if entry is None:
                continue
            key = genome_key(entry.genome)
            if key not in by_genome or entry.sort_key() > by_genome[key].sort_key():
                by_genome[key] = entry
        self.items = sorted(by_genome.values(), key=lambda s: s.sort_key(), reverse=True)[: self.size]


def run_search(
    strategy,
    settings: SearchParams,
    seed: int,
    evaluate_map: Callable[[Sequence[CandidateTask]], list[CandidateResult]],
    *,
    params_hash: str = "",
    checkpoint_path: Path | None = None,
    on_result: Callable[[int, int, CandidateResult], None] | None = None,
    on_generation: Callable[[GenerationRecord], None] | None = None,
    log: Callable[[str], None] = print,
) -> SearchOutcome:
    """Run `strategy` until its generations or a budget run out; resume from a checkpoint."""
    random.seed(seed)
    budget = Budget(settings)
    evaluator = Evaluator(settings, seed, evaluate_map, budget, on_result)
    hall = HallOfFame(settings.hall_of_fame)
    records: list[GenerationRecord] = []
    start_generation, resumed_from, stop_reason = 0, None, None

    restored = load_checkpoint(checkpoint_path, params_hash, log) if checkpoint_path else None
    if restored:
        evaluator.memo = {k: CandidateResult.from_dict(v) for k, v in restored.memo.items()}
        evaluator.history = [(g, r, evaluator.memo[k]) for g, r, k in restored.history]
        evaluator.memo_hits = restored.memo_hits
        hall.items = [Scored(g, evaluator.memo[k], r) for g, k, r in restored.hall_of_fame]
        records = [GenerationRecord(**r) for r in restored.generations]
        budget = Budget(settings, restored.evaluations, restored.seconds, restored.epochs)
        budget.best_score = tuple(restored.best_score) if restored.best_score else None
        budget.stale_generations = restored.stale_generations
        evaluator.budget = budget
        random.setstate(_random_state_from_json(restored.random_state))
        strategy.load_state(restored.strategy_state, lambda k: evaluator.memo[k])
        start_generation, resumed_from, stop_reason = restored.generation + 1, restored.generation, restored.stop_reason
        log(f"search: resuming after generation {restored.generation} from {checkpoint_path}")

    last = strategy.last_generation()
    generation = start_generation
    while stop_reason is None and generation <= last:
        started = time.perf_counter()
        before = len(evaluator.history)
        proposals = strategy.propose(generation)
        if not proposals:
            stop_reason = "search space exhausted"
            break
        scored = evaluator.score(proposals, generation)
        strategy.observe(generation, proposals, scored)
        hall.update(scored)
        fresh = [r for _, _, r in evaluator.history[before:]]
        population = [s for s in strategy.population() if s is not None]
        if population:
            accuracies = [s.result.val_accuracy for s in population]
            record = GenerationRecord(generation, max(accuracies), sum(accuracies) / len(accuracies), len(fresh),
                                      sum(1 for r in fresh if r.failure), time.perf_counter() - started)
            records.append(record)
            budget.observe_generation(max(population, key=Scored.sort_key))
            if on_generation:
                on_generation(record)
        stop_reason = budget.exhausted() if generation < last else None
        if checkpoint_path:
            memo_keys = {id(r): evaluator.memo_key(r.key, r.epochs) for r in evaluator.memo.values()}
            save_checkpoint(checkpoint_path, Checkpoint(
                params_hash=params_hash,
                generation=generation,
                strategy_state=strategy.state(lambda result: memo_keys[id(result)]),
                memo={k: v.as_dict() for k, v in evaluator.memo.items()},
                history=[[g, r, memo_keys[id(res)]] for g, r, res in evaluator.history],
                hall_of_fame=[[s.genome, memo_keys[id(s.result)], s.rung] for s in hall.items],
                generations=[asdict(r) for r in records],
                random_state=_random_state_to_json(random.getstate()),
                evaluations=budget.evaluations,
                epochs=budget.epochs,
                seconds=budget.seconds,
                memo_hits=evaluator.memo_hits,
                best_score=list(budget.best_score) if budget.best_score else None,
                stale_generations=budget.stale_generations,
                stop_reason=stop_reason,
            ))
        generation += 1
    if not hall.items:
        raise RuntimeError("the search evaluated no candidate (is max_evaluations 0 or the time budget too small?)")
    return SearchOutcome(
        best=strategy.pick_best(hall.items),
        hall_of_fame=list(hall.items),
        history=evaluator.history,
        generations=records,
        memo_hits=evaluator.memo_hits,
        stop_reason=stop_reason or "completed",
        pareto=strategy.pareto_front(),
        resumed_from=resumed_from,
    )
