"""Evaluate one candidate anywhere (this process, a worker process, a Ray worker).

`evaluate_candidate` never raises for a bad candidate: NaN loss, an invalid or too-large
network, out of memory or any exception inside the model become a result with `failure` set
and the worst fitness, so the search goes on. Workers only return results; the main process
writes files and MLflow.
"""
from __future__ import annotations

import hashlib
import math
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from pipeline.data import PreparedData
from pipeline.errors import CandidateFailure
from pipeline.fusion import latency_ms
from pipeline.training import fit

WORST_LOSS = math.inf


@dataclass(frozen=True)
class CandidateContext:
    """What every candidate of a search shares; sent to each worker once."""

    data: PreparedData
    device: str
    bf16: bool
    max_params: int | None
    measure_latency: bool = False
    time_limit: float | None = None


@dataclass(frozen=True)
class CandidateTask:
    key: str
    genome: dict
    epochs: int
    seed: int


@dataclass
class CandidateResult:
    key: str
    genome: dict
    epochs: int
    seed: int
    val_accuracy: float = 0.0
    val_loss: float = WORST_LOSS
    params: int = 0
    flops: int = 0
    latency_ms: float = 0.0
    seconds: float = 0.0
    failure: str = ""
    detail: str = ""
    curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key_hash(self) -> str:
        """A short, stable name for the genome (for tables and run names)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    @property
    def fitness(self) -> tuple[float, float]:
        return (self.val_accuracy, self.val_loss)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CandidateResult":
        return cls(**data)


def count_flops(model: torch.nn.Module, input_shape) -> int:
    """Forward FLOPs for one image, counted by PyTorch (deterministic, unlike latency)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    return int(counter.get_total_flops())


def evaluate_candidate(task: CandidateTask, context: CandidateContext) -> CandidateResult:
    result = CandidateResult(task.key, task.genome, task.epochs, task.seed)
    started = time.perf_counter()
    # One thread per candidate on the CPU: float reductions then run in the same order in
    # every backend, so results are bitwise identical whatever the worker count; parallelism
    # comes from running candidates side by side (`search.backend: processes`).
    threads = torch.get_num_threads()
    if context.device == "cpu":
        torch.set_num_threads(1)
    try:
        model, fitted = fit(
            task.genome,
            context.data,
            task.epochs,
            task.seed,
            torch.device(context.device),
            bf16=context.bf16,
            max_params=context.max_params,
            time_limit=context.time_limit,
        )
        result.val_accuracy, result.val_loss, result.params = fitted.val_accuracy, fitted.val_loss, fitted.params
        result.curve = [vars(record) for record in fitted.epochs]
        result.flops = count_flops(model, context.data.input_shape)
        if context.measure_latency:
            result.latency_ms = round(latency_ms(model.cpu(), torch.rand(1, *context.data.input_shape), 10), 4)
    except CandidateFailure as failure:
        result.failure, result.detail = failure.reason, failure.detail
    except (torch.OutOfMemoryError, MemoryError) as err:
        result.failure, result.detail = "out_of_memory", (str(err).splitlines() or [type(err).__name__])[0][:300]
    except RuntimeError as err:
        # The CPU allocator reports exhaustion as a plain RuntimeError.
        memory = "can't allocate memory" in str(err) or "out of memory" in str(err).lower()
        result.failure = "out_of_memory" if memory else "exception"
        result.detail = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    except Exception as err:  # a broken candidate must never crash the search
        result.failure = "exception"
        result.detail = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        result.detail += " @ " + traceback.extract_tb(err.__traceback__)[-1].name
    finally:
        torch.set_num_threads(threads)
        if torch.cuda.is_available() and context.device.startswith("cuda"):
            torch.cuda.empty_cache()
    if result.failure:
        result.val_accuracy, result.val_loss = 0.0, WORST_LOSS
    result.seconds = time.perf_counter() - started
    return result
