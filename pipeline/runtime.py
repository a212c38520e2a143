"""Where and how tensors run: device choice, CPU threads, determinism, autocast.

On CPU the same genome and seed must give the same numbers every time, so deterministic
algorithms are switched on and the thread count is fixed. On CUDA speed wins: cuDNN
autotuning on, bf16 autocast when asked.
"""
from __future__ import annotations

import contextlib
import os

import torch

from pipeline.errors import UserError


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("runtime.device: 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def configure(device: torch.device, threads: int = 0) -> None:
    """Set threads and determinism for `device` (threads 0 = one per available core)."""
    if device.type == "cpu":
        torch.set_num_threads(threads or available_cores())
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def configure_worker(device: str) -> None:
    """A search worker (process or Ray task) trains one candidate on one thread: float
    reductions then run in the same order everywhere, so results do not depend on the
    backend or the worker count; parallelism comes from candidates side by side."""
    torch.set_num_threads(1)
    if device == "cpu":
        torch.use_deterministic_algorithms(True)


@contextlib.contextmanager
def single_thread(device: str):
    """One thread for the duration of a candidate trained in this process (serial backend)."""
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def autocast(device: torch.device, bf16: bool):
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
