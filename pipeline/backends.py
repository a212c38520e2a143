"""Where candidates run: a swappable `map` (DEAP's `onemax_mp.py` pattern).

Every backend takes the same tasks and returns results in task order; since a candidate's
seed comes from the run seed and its genome, the results do not depend on the backend or the
worker count. Workers get the shared `CandidateContext` once, at start-up.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

import torch

from pipeline.candidate import CandidateContext, CandidateResult, CandidateTask, evaluate_candidate

CandidateMap = Callable[[Sequence[CandidateTask]], list[CandidateResult]]

_worker_context: CandidateContext | None = None


def _init_worker(context: CandidateContext, threads: int) -> None:
    global _worker_context
    _worker_context = context
    torch.set_num_threads(threads)
    if context.device == "cpu":
        torch.use_deterministic_algorithms(True)


def _evaluate_in_worker(task: CandidateTask) -> CandidateResult:
    assert _worker_context is not None, "worker started without its context"
    return evaluate_candidate(task, _worker_context)


class SerialBackend:
    def __init__(self, context: CandidateContext):
        self.context = context

    def map(self, tasks: Sequence[CandidateTask]) -> list[CandidateResult]:
        return [evaluate_candidate(task, self.context) for task in tasks]

    def close(self) -> None:
        pass


class ProcessBackend:
    """A pool of spawned processes (fork after torch has threads can deadlock)."""

    def __init__(self, context: CandidateContext, workers: int, threads_per_worker: int = 1):
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(context, threads_per_worker),
        )

    def map(self, tasks: Sequence[CandidateTask]) -> list[CandidateResult]:
        return list(self.pool.map(_evaluate_in_worker, tasks))

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def make_backend(name: str, context: CandidateContext, workers: int):
    """`workers` 0 means one per available core; one worker is just the serial backend."""
    workers = workers or available_cores()
    if name == "serial" or workers == 1:
        return SerialBackend(context)
    if name == "processes":
        return ProcessBackend(context, workers)
    raise ValueError(f"unknown backend {name!r}")
