"""Where candidates run: a swappable `map` (DEAP's `onemax_mp.py` pattern).

Every backend takes the same tasks and returns results in task order; since a task's seed
comes from the run seed and its genome, the results do not depend on the backend or the
worker count. The problem travels to each worker once, at start-up, and its
`prepare_worker()` runs there (the CNN problem pins one thread and determinism). A worker
that dies is retried once; a second loss is a failed candidate (`worker_lost`).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from pipeline.search.problem import Result, Task

#: Called with each (task, result) as it arrives (the evaluator stores it at once).
Done = Callable[[Task, Result], None]

_worker_problem = None


def _init_worker(problem) -> None:
    global _worker_problem
    _worker_problem = problem
    problem.prepare_worker()


def _evaluate_in_worker(task: Task) -> Result:
    assert _worker_problem is not None, "worker started without its problem"
    return _worker_problem.run(task)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class SerialBackend:
    """In this process, one task after the other."""

    def __init__(self, problem, settings=None):
        self.problem = problem

    def map(self, tasks: Sequence[Task], done: Done | None = None) -> list[Result]:
        results = []
        for task in tasks:
            results.append(self.problem.run(task))
            if done:
                done(task, results[-1])
        return results

    def close(self) -> None:
        pass


class ProcessBackend:
    """A pool of spawned processes (fork after torch has threads can deadlock)."""

    def __init__(self, problem, settings=None, workers: int | None = None):
        self.problem = problem
        self.workers = workers or (settings.workers if settings else 0) or available_cores()
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.problem,))

    def _restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def map(self, tasks: Sequence[Task], done: Done | None = None) -> list[Result]:
        """Run tasks; when a worker process dies (OOM killer, segfault) the pool breaks, so
        it is restarted and the unfinished tasks retried once; a second loss is a failure.
        `done(task, result)` is called for each result as it is collected."""
        results: dict[int, Result] = {}
        pending = list(range(len(tasks)))
        for _attempt in (1, 2):
            futures = {i: self.pool.submit(_evaluate_in_worker, tasks[i]) for i in pending}
            lost = []
            for i, future in futures.items():
                try:
                    results[i] = future.result()
                except BrokenProcessPool:
                    lost.append(i)
                    continue
                if done:
                    done(tasks[i], results[i])
            if not lost:
                break
            self._restart()
            pending = lost
        for i in pending if lost else []:
            results[i] = Result.lost(tasks[i], "worker process died twice")
        return [results[i] for i in range(len(tasks))]

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def _ray_backend(problem, settings):
    from pipeline.search.ray_backend import RayBackend  # Ray is imported only when used

    return RayBackend(problem, settings.ray_address, settings.workers or available_cores(), settings.gpus_per_trial)


def _processes(problem, settings):
    if (settings.workers or available_cores()) == 1:
        return SerialBackend(problem)
    return ProcessBackend(problem, settings)


#: `search.backend` name -> factory(problem, settings).
BACKENDS = {"serial": SerialBackend, "processes": _processes, "ray": _ray_backend}


def make_backend(problem, settings):
    return BACKENDS[settings.backend](problem, settings)
