"""What the engine searches, as one small interface, and what it sends and gets back.

A problem has a `space`, a `repair(genome) -> genome` that makes any genome valid (and
canonical: genes that change nothing reset, so equal trainings share one key), and an
`evaluate(task) -> Result`. The engine knows nothing else about it: the CNN problem trains
a network; a benchmark's problem looks the genome up in a table. `evaluate` runs wherever
the backend puts it (this process, a worker process, a Ray worker), so a problem must
pickle, and it must never raise for a bad candidate: a failure is a `Result` with
`failure` set. `prepare_worker()`, when present, runs once in each worker process.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

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
    problem), `loss` breaks ties (lower wins); `metrics` holds what other objectives may
    minimize (parameters, FLOPs, latency). A failed candidate has the worst score and loss."""

    key: str
    genome: dict
    budget: float
    seed: int
    score: float = 0.0
    loss: float = WORST_LOSS
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    failure: str = ""
    detail: str = ""
    curve: list[dict[str, Any]] = field(default_factory=list)
    state: bytes | None = field(default=None, repr=False, compare=False)  # travels back, never stored

    @classmethod
    def of(cls, task: Task, **values) -> "Result":
        return cls(task.key, task.genome, task.budget, task.seed, **values)

    @classmethod
    def lost(cls, task: Task, detail: str) -> "Result":
        """The result of a candidate whose worker died twice (OOM killer, segfault)."""
        return cls.of(task, failure="worker_lost", detail=detail)

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


def prepare_worker(problem) -> None:
    """Run the problem's own worker set-up, if it has one (once per worker)."""
    if hasattr(problem, "prepare_worker"):
        problem.prepare_worker()


class Problem(Protocol):
    space: Space

    def repair(self, genome: dict) -> dict: ...

    def evaluate(self, task: Task) -> Result: ...
