"""The CNN search problem: what the generic engine searches when it searches networks.

`CNNProblem` implements the engine's interface with the rest of the library: its space is
built from `params.yaml` over the gene catalog, `repair` canonicalizes a genome and makes it
buildable on the data's input shape, and `evaluate` trains the genome with `fit` and scores
it on the validation split. `evaluate` never raises for a bad candidate: NaN loss, an
invalid or too-large network, a timeout, out of memory or any exception inside the model
become a `Result` with `failure` set, so the search goes on. The problem (with its data)
travels to each worker once; workers only return results.
"""
from __future__ import annotations

import functools
import hashlib
import json
import time
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from pipeline.data.types import PreparedData
from pipeline.errors import CandidateFailure, first_line
from pipeline.genome.genome import genome_key, repair
from pipeline.nn.measure import forward_flops, latency_ms
from pipeline.runtime import configure_worker, single_thread
from pipeline.search.problem import Problem, Result, Task
from pipeline.search.space import Space
from pipeline.train.cost import epoch_cost
from pipeline.train.fit import fit

#: The code whose change can change a candidate's result (relative to `pipeline/`).
TRAINER_SOURCES = ("train", "nn", "genome/catalog.py", "genome/genome.py", "genome/problem.py", "runtime.py",
                   "data/types.py")


def trainer_version(root: Path = Path(__file__).resolve().parents[1]) -> str:
    """A hash of the trainer's source files and the torch version: results kept in the
    candidate store are reused only by the exact code (and PyTorch) that made them. Any
    edit counts, comments included: reusing too little costs time, too much costs truth."""
    digest = hashlib.sha256(torch.__version__.encode())
    for relative in TRAINER_SOURCES:
        path = root / relative
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def failure_of(err: BaseException) -> tuple[str, str]:
    """(reason, detail) for an error raised while training a candidate."""
    if isinstance(err, CandidateFailure):
        return err.reason, err.detail
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return "out_of_memory", first_line(err, 300)
    detail = f"{type(err).__name__}: {first_line(err, 300)}"[:300]
    if isinstance(err, RuntimeError):
        # The CPU allocator reports exhaustion as a plain RuntimeError.
        text = str(err).lower()
        return ("out_of_memory" if "can't allocate memory" in text or "out of memory" in text else "exception"), detail
    return "exception", f"{detail} @ {traceback.extract_tb(err.__traceback__)[-1].name}"


@functools.lru_cache(maxsize=4096)
def _flops(key: str, input_shape: tuple, num_classes: int) -> int:
    return forward_flops(json.loads(key), input_shape, num_classes)


@dataclass(frozen=True)
class CNNProblem(Problem):
    space: Space
    data: PreparedData
    device: str = "cpu"
    bf16: bool = False
    max_params: int | None = None
    measure_latency: bool = False
    time_limit: float | None = None

    @cached_property
    def fingerprint(self) -> str:
        """Everything besides the task that determines a result: the candidate store's key."""
        settings = [self.data.fingerprint(), trainer_version(), self.device, self.bf16, self.max_params,
                    self.measure_latency, self.time_limit]
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]

    @property
    def uses_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def repair(self, genome: dict) -> dict:
        return repair(genome, self.space, self.data.input_shape)

    def epoch_cost(self, genome: dict, flops: float) -> float:
        """Reference seconds of one search epoch of `genome` (`pipeline.train.cost`)."""
        return epoch_cost(genome, flops, len(self.data.train), len(self.data.val)).reference_seconds

    def flops(self, genome: dict) -> int:
        """Forward FLOPs per image (counted once per genome in this process)."""
        return _flops(genome_key(genome), tuple(self.data.input_shape), self.data.num_classes)

    def cost_of(self, genome: dict, epochs: float) -> float:
        """Reference seconds of `epochs` more epochs of `genome`: counted FLOPs and steps,
        the same arithmetic `evaluate` charges, so the budget is known before training."""
        return epochs * self.epoch_cost(genome, self.flops(genome))

    def prepare_worker(self) -> None:
        configure_worker(self.device)

    def evaluate(self, task: Task) -> Result:
        result = Result.of(task)
        started = time.perf_counter()
        try:
            flops = self.flops(task.genome)
            result.cost = task.budget * self.epoch_cost(task.genome, flops)  # what a failure is charged
            with single_thread(self.device):
                model, fitted = fit(task.genome, self.data, task.budget, task.seed, torch.device(self.device),
                                    bf16=self.bf16, max_params=self.max_params, time_limit=self.time_limit,
                                    horizon=task.horizon and int(task.horizon), resume=task.resume,
                                    keep_state=task.keep_state)
                result.score, result.loss, result.state = fitted.val_accuracy, fitted.val_loss, fitted.state
                result.curve = [vars(record) for record in fitted.epochs]
                result.metrics = {"params": fitted.params, "flops": flops}
                result.cost = fitted.trained_epochs * self.epoch_cost(task.genome, flops)
                if self.measure_latency:
                    example = torch.rand(1, *self.data.input_shape)
                    result.metrics["latency"] = round(latency_ms(model.cpu(), example, 10), 4)
        except Exception as err:  # a broken candidate must never crash the search
            result.failure, result.detail = failure_of(err)
        finally:
            if torch.cuda.is_available() and self.uses_gpu:
                torch.cuda.empty_cache()
        result.seconds = time.perf_counter() - started
        return result
