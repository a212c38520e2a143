"""Weight averaging during training: an exponential moving average of the weights (the
`ema` gene), the model that is evaluated, selected and exported in place of the last
weights.

It is PyTorch's `AveragedModel` (a copy of the net updated after every optimizer step)
with an averaging function of our own: the decay warms up as min(decay, (1 + n) / (10 + n))
after n updates (TensorFlow's `ExponentialMovingAverage` with `num_updates`, timm's
`ModelEma` warm-up), so a three-epoch search candidate is not dominated by its random
initial weights, and buffers are averaged too (batch norm's running statistics follow the
averaged weights); integer buffers (batch counts) are copied.
"""
from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay used for the update after `updates` earlier ones."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def _ema_update(decay: float):
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():
            torch._foreach_copy_(averaged, current)
            return
        weight = 1.0 - warmed_up_decay(decay, int(updates))
        torch._foreach_lerp_(averaged, current, weight)
    return update


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel:
    """An EMA of `model`'s parameters and buffers; call `update_parameters(model)` after
    each optimizer step and use `.module` as the averaged network."""
    return AveragedModel(model, multi_avg_fn=_ema_update(decay), use_buffers=True)
