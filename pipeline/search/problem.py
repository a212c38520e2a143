"""What the engine searches, as one small interface, and what it sends and gets back.

A problem subclasses `Problem`: it has a `space` and an `evaluate(task) -> Result`, and may
override the rest, whose defaults suit a problem that needs nothing more: `repair(genome)`
makes any genome valid and canonical (genes that change nothing reset, so equal trainings
share one key; default: unchanged), `fingerprint` names everything besides the task that
determines a result (the candidate store's key; default: none, so nothing is stored),
`uses_gpu` asks the Ray backend for GPUs, `deterministic` says a result does not depend on
the task's seed (so the engine never evaluates a genome twice), and `prepare_worker()` runs
once in each worker process. The engine knows nothing else about it: the CNN problem trains a network; a
benchmark's problem looks the genome up in a table. `evaluate` runs wherever the backend
puts it (this process, a worker process, a Ray worker), so a problem must pickle, and it
must never raise for a bad candidate: a failure is a `Result` with `failure` set, which the
engine ranks below every finished result whatever its score.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field
from abc import ABC, abstractmethod
from typing import Any

from pipeline.search.space import Space

WORST_LOSS = math.inf


@dataclass(frozen=True)
class Task:
    """Evaluate `genome` at `budget` (epochs, for the CNN problem; may be a fraction) with
    this seed. With `horizon`, the evaluation is the first `budget` of one training that
    would run to `horizon` (its schedule laid over the whole horizon); `resume` is the
    state an earlier, smaller budget of the same training kept, and `keep_state` asks for
    the state at this budget (`Result.state`) so that a promotion can continue from it."""

    key: str
    genome: dict
    budget: float
    seed: int
    horizon: float | None = None
    resume: bytes | None = field(default=None, repr=False)
    keep_state: bool = False


@dataclass
class Result:
    """A candidate's outcome. `score` is maximized (validation accuracy for the CNN
    problem; any scale and sign), `loss` breaks ties (lower wins); `metrics` holds what
    other objectives may minimize (parameters, FLOPs, latency); `cost` is what the
    evaluation spent in the problem's own unit (None: its budget), which `search.max_cost`
    counts and cost-aware strategies predict. A result with `failure` set has no score:
    it ranks below every finished one (`Scored.sort_key`)."""

    key: str
    genome: dict
    budget: float
    seed: int
    score: float = 0.0
    loss: float = WORST_LOSS
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    cost: float | None = None
    failure: str = ""
    detail: str = ""
    curve: list[dict[str, Any]] = field(default_factory=list)
    state: bytes | None = field(default=None, repr=False, compare=False)  # travels back, never stored
    started: float = field(default=0.0, compare=False)  # wall clock (Unix seconds) around `evaluate`
    finished: float = field(default=0.0, compare=False)

    @classmethod
    def of(cls, task: Task, **values) -> "Result":
        return cls(task.key, task.genome, task.budget, task.seed, **values)

    @classmethod
    def lost(cls, task: Task, detail: str) -> "Result":
        """The result of a candidate whose worker died twice (OOM killer, segfault)."""
        return cls.of(task, failure="worker_lost", detail=detail)

    @property
    def failed(self) -> bool:
        return bool(self.failure)

    @property
    def spent(self) -> float:
        """What this evaluation counts against `search.max_cost`: its cost, else its budget."""
        return float(self.budget) if self.cost is None else self.cost

    @property
    def key_hash(self) -> str:
        """A short, stable name for the genome (for tables and run names)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("state")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        return cls(**data)


class Problem(ABC):
    """What the engine searches. Subclasses set `space` (a field or an attribute) and
    implement `evaluate`; every other member has a default."""

    space: Space

    @abstractmethod
    def evaluate(self, task: Task) -> Result:
        """The result of one task; never raises for a bad candidate (set `failure`)."""

    def repair(self, genome: dict) -> dict:
        """A valid, canonical genome of `space` (default: the genome unchanged)."""
        return dict(genome)

    @property
    def fingerprint(self) -> str:
        """What besides the task determines a result; "" keeps results out of the store."""
        return ""

    @property
    def uses_gpu(self) -> bool:
        return False

    @property
    def deterministic(self) -> bool:
        """True when a result does not depend on the task's seed: re-evaluating the
        incumbent (`search.incumbent_evaluations`) could not change it, so it is skipped."""
        return False

    def prepare_worker(self) -> None:
        """Set-up that runs once in each worker process before its first task."""

    def cost_of(self, genome: dict, epochs: float) -> float | None:
        """The cost (`Result.cost`'s unit) of training `genome` for `epochs` more budget
        units, known before training; None (the default) when only the training can tell.
        With it, `search.max_cost` is never overspent."""
        return None

    def run(self, task: Task) -> Result:
        """`evaluate`, with the wall-clock times it started and finished on the result (what
        every backend calls, so each result says when it really trained)."""
        started = time.time()
        result = self.evaluate(task)
        result.started, result.finished = started, time.time()
        return result
