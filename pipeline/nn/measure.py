"""How big and how fast a network is: parameters, forward FLOPs (counted by PyTorch, so
reproducible) and median latency (measured, so not)."""
from __future__ import annotations

import time

import torch
from torch import nn

from pipeline.nn.model import InvalidArchitecture, build_model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape) -> int:
    """Forward FLOPs for one image, counted by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    return int(counter.get_total_flops())


def forward_flops(genome, input_shape, num_classes: int) -> int:
    """Forward FLOPs per image of the genome's network (built on the CPU, never trained),
    one pass (the flip-averaged evaluation of the `tta` gene runs it twice); 0 when the
    genome describes no buildable network."""
    try:
        model = build_model({**genome, "tta": False}, input_shape, num_classes, [0.0] * input_shape[0], [1.0] * input_shape[0])
    except InvalidArchitecture:
        return 0
    return count_flops(model, input_shape)


@torch.inference_mode()
def latency_ms(run, example: torch.Tensor, repeats: int) -> float:
    """Median wall time of one call of `run` (a model or any callable) in milliseconds,
    after two warm-up calls."""
    if isinstance(run, nn.Module):
        run.eval()
    for _ in range(2):
        run(example)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(example)
        times.append(time.perf_counter() - started)
    times.sort()
    return 1000.0 * times[len(times) // 2]


def latency_table(runners: dict, examples: dict[int, torch.Tensor], repeats: int) -> dict[str, float]:
    """`<name>_batch<b>_ms` for every runner and batch, and `<name>_speedup_batch<b>` of
    each against the first runner, all timed in this one process."""
    table = {}
    baseline = next(iter(runners))
    for batch, example in examples.items():
        for name, runner in runners.items():
            table[f"{name}_batch{batch}_ms"] = latency_ms(runner, example, repeats)
        for name in list(runners)[1:]:
            table[f"{name}_speedup_batch{batch}"] = table[f"{baseline}_batch{batch}_ms"] / table[f"{name}_batch{batch}_ms"]
    return table
