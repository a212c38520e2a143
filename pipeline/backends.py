"""Where candidates run: a swappable `map` (DEAP's `onemax_mp.py` pattern).

Every backend takes the same tasks and returns results in task order; since a candidate's
seed comes from the run seed and its genome, the results do not depend on the backend or the
worker count. Workers get the shared `CandidateContext` once, at start-up.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
        self.context, self.workers, self.threads = context, workers, threads_per_worker
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(self.context, self.threads),
        )

    def _restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def map(self, tasks: Sequence[CandidateTask]) -> list[CandidateResult]:
        """Run tasks; when a worker process dies (OOM killer, segfault) the pool breaks, so
        it is restarted and the unfinished tasks retried once; a second loss is a failure."""
        results: dict[int, CandidateResult] = {}
        pending = list(range(len(tasks)))
        for attempt in (1, 2):
            futures = {i: self.pool.submit(_evaluate_in_worker, tasks[i]) for i in pending}
            lost = []
            for i, future in futures.items():
                try:
                    results[i] = future.result()
                except BrokenProcessPool:
                    lost.append(i)
            if not lost:
                break
            self._restart()
            pending = lost
        for i in pending if lost else []:
            task = tasks[i]
            results[i] = CandidateResult(task.key, task.genome, task.epochs, task.seed, failure="worker_lost",
                                         detail="worker process died twice")
        return [results[i] for i in range(len(tasks))]

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def make_backend(settings, context: CandidateContext):
    """The backend `settings` (a `SearchParams`) names; `workers` 0 = one per available core."""
    workers = settings.workers or available_cores()
    if settings.backend == "ray":
        from pipeline.ray_backend import RayBackend

        return RayBackend(context, settings.ray_address, workers, settings.gpus_per_trial)
    if settings.backend == "serial" or workers == 1:
        return SerialBackend(context)
    return ProcessBackend(context, workers)
