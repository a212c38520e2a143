"""Candidates as Ray tasks, on a local Ray or an existing cluster (`search.ray_address`).

The shared context is put in Ray's object store once; each candidate is a task asking for
one CPU and `gpus_per_trial` GPUs (fractional, so several small candidates share a GPU).
Ray retries a task once when its worker dies; a second loss is recorded as a failed
candidate (`worker_lost`), never a crashed search. Results come back in task order.
"""
from __future__ import annotations

from typing import Sequence

from pipeline.candidate import CandidateContext, CandidateResult, CandidateTask, evaluate_candidate
from pipeline.errors import UserError


def _evaluate_remote(task: CandidateTask, context: CandidateContext) -> CandidateResult:
    import torch

    torch.set_num_threads(1)
    if context.device == "cpu":
        torch.use_deterministic_algorithms(True)
    return evaluate_candidate(task, context)


class RayBackend:
    def __init__(self, context: CandidateContext, address: str, workers: int, gpus_per_trial: float):
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
                raise UserError(f"search.ray_address: cannot connect to Ray at '{address}' ({str(err).splitlines()[0]})") from None
        self.context = ray.put(context)
        device = "cuda" if context.device.startswith("cuda") else "cpu"
        self.remote = ray.remote(num_cpus=1, num_gpus=gpus_per_trial if device == "cuda" else 0, max_retries=1)(_evaluate_remote)

    def map(self, tasks: Sequence[CandidateTask]) -> list[CandidateResult]:
        refs = [self.remote.remote(task, self.context) for task in tasks]
        results = []
        for ref, task in zip(refs, tasks):
            try:
                results.append(self.ray.get(ref))
            except (self.ray.exceptions.WorkerCrashedError, self.ray.exceptions.NodeDiedError,
                    self.ray.exceptions.ObjectLostError) as err:
                lost = CandidateResult(task.key, task.genome, task.epochs, task.seed, failure="worker_lost",
                                       detail=f"{type(err).__name__} after one retry")
                results.append(lost)
        return results

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()
