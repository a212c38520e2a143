"""Candidates as Ray tasks, on a local Ray or an existing cluster (`search.ray_address`).

The problem is put in Ray's object store once; each candidate is a task asking for one CPU
and `gpus_per_trial` GPUs when the problem trains on a GPU (fractional, so several small
candidates share one). Ray retries a task once when its worker dies; a second loss is
recorded as a failed candidate (`worker_lost`), never a crashed search. Results come back
in task order.
"""
from __future__ import annotations

from typing import Sequence

from pipeline.errors import UserError, first_line
from pipeline.search.problem import Result, Task


def _evaluate_remote(task: Task, problem) -> Result:
    problem.prepare_worker()
    return problem.run(task)


class RayBackend:
    def __init__(self, problem, address: str, workers: int, gpus_per_trial: float):
        try:
            import ray
        except ImportError:
            raise UserError("search.backend: ray needs Ray: pip install 'automl-pipeline[ray]'") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise UserError(f"search.ray_address: cannot connect to Ray at '{address}' ({first_line(err)})") from None
        self.problem = ray.put(problem)
        gpus = gpus_per_trial if problem.uses_gpu else 0
        self.remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=1)(_evaluate_remote)

    def map(self, tasks: Sequence[Task], done=None) -> list[Result]:
        refs = [self.remote.remote(task, self.problem) for task in tasks]
        lost_errors = (self.ray.exceptions.WorkerCrashedError, self.ray.exceptions.NodeDiedError,
                       self.ray.exceptions.ObjectLostError)
        results = []
        for ref, task in zip(refs, tasks):
            try:
                results.append(self.ray.get(ref))
            except lost_errors as err:
                results.append(Result.lost(task, f"{type(err).__name__} after one retry"))
                continue
            if done:
                done(task, results[-1])
        return results

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()
