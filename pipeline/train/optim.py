"""Optimizers and learning-rate schedules, by name.

Every schedule is parameterised by the candidate's own budget (epochs x steps per epoch), so
one genome means the same shape of schedule at 3 epochs in the search and at 30 in training.
`Schedule` hides which schedulers step per batch, which per epoch and which need the
validation loss (plateau), so the fit loop has one call site for each moment.
"""
from __future__ import annotations

import functools
import math
from typing import Iterable, Mapping

import torch
from torch.optim import lr_scheduler


def _sgd(params, g, **extra):
    return torch.optim.SGD(params, lr=g["lr"], weight_decay=g["weight_decay"], **extra)


OPTIMIZERS = {
    "sgd": lambda p, g: _sgd(p, g),
    "sgd_momentum": lambda p, g: _sgd(p, g, momentum=g["momentum"]),
    # Nesterov needs a positive momentum; a zero gene would be an invalid optimizer.
    "sgd_nesterov": lambda p, g: _sgd(p, g, momentum=max(g["momentum"], 1e-3), nesterov=True),
    "adagrad": lambda p, g: torch.optim.Adagrad(p, lr=g["lr"], weight_decay=g["weight_decay"]),
    "rmsprop": lambda p, g: torch.optim.RMSprop(p, lr=g["lr"], momentum=g["momentum"], weight_decay=g["weight_decay"]),
    "adam": lambda p, g: torch.optim.Adam(p, lr=g["lr"], weight_decay=g["weight_decay"]),
    "adamw": lambda p, g: torch.optim.AdamW(p, lr=g["lr"], weight_decay=g["weight_decay"]),
    "nadam": lambda p, g: torch.optim.NAdam(p, lr=g["lr"], weight_decay=g["weight_decay"]),
    "adamax": lambda p, g: torch.optim.Adamax(p, lr=g["lr"], weight_decay=g["weight_decay"]),
    "amsgrad": lambda p, g: torch.optim.Adam(p, lr=g["lr"], weight_decay=g["weight_decay"], amsgrad=True),
}

#: Optimizers that read the `momentum` gene (and whose momentum cyclic schedules may cycle).
OPTIMIZERS_WITH_MOMENTUM = ("sgd_momentum", "sgd_nesterov", "rmsprop")


#: The batch size at which the `lr` gene is the learning rate under a scaling rule.
REFERENCE_BATCH = 128

#: How the learning rate follows the batch size (`lr_scaling` gene), as a factor of
#: batch / REFERENCE_BATCH: linear for SGD (Goyal et al. 2017, "Accurate, large minibatch
#: SGD"), square root for adaptive optimizers (Krizhevsky 2014; Malladi et al. 2022), none.
LR_SCALING = {
    "none": lambda ratio: 1.0,
    "linear": lambda ratio: ratio,
    "sqrt": lambda ratio: math.sqrt(ratio),
}


def effective_lr(genome: Mapping) -> float:
    """The learning rate a genome trains with: `lr` scaled to its batch size by its rule."""
    return genome["lr"] * LR_SCALING[genome["lr_scaling"]](genome["batch_size"] / REFERENCE_BATCH)


def with_effective_lr(genome: Mapping) -> Mapping:
    return genome if genome["lr_scaling"] == "none" else {**genome, "lr": effective_lr(genome)}


def make_optimizer(genome: Mapping, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return OPTIMIZERS[genome["optimizer"]](params, with_effective_lr(genome))


# Named lambda schedules: factor of the base lr as a function of progress in [0, 1].
def warmup_linear(progress: float, warmup: float = 0.1) -> float:
    if progress < warmup:
        return (progress + 1e-3) / warmup
    return max(0.0, (1.0 - progress) / (1.0 - warmup))


def warmup_cosine(progress: float, warmup: float = 0.1) -> float:
    if progress < warmup:
        return (progress + 1e-3) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))


def inverse_sqrt(progress: float, warmup: float = 0.1) -> float:
    return min((progress + 1e-3) / warmup, math.sqrt(warmup / max(progress, warmup)))


LAMBDA_SCHEDULES = {"warmup_linear": warmup_linear, "warmup_cosine": warmup_cosine, "inverse_sqrt": inverse_sqrt}


def _lambda(optimizer, genome, epochs, steps):
    shape = LAMBDA_SCHEDULES[genome["lambda_schedule"]]
    total = epochs * steps
    return lr_scheduler.LambdaLR(optimizer, functools.partial(_progress_factor, shape=shape, total=total))


def _progress_factor(step: int, shape, total: int) -> float:
    return shape(min(1.0, step / max(1, total)))


def _cycles_momentum(genome) -> bool:
    return genome["optimizer"] in ("sgd_momentum", "sgd_nesterov")


# name -> (factory(optimizer, genome, epochs, steps_per_epoch), when it steps)
SCHEDULERS = {
    "none": (None, None),
    "step": (lambda o, g, e, s: lr_scheduler.StepLR(o, step_size=max(1, e // 3), gamma=0.1), "epoch"),
    "multistep": (
        lambda o, g, e, s: lr_scheduler.MultiStepLR(o, sorted({max(1, e // 2), max(1, (3 * e) // 4)}), gamma=0.1),
        "epoch",
    ),
    "exponential": (lambda o, g, e, s: lr_scheduler.ExponentialLR(o, gamma=0.01 ** (1.0 / max(1, e))), "epoch"),
    "cosine": (lambda o, g, e, s: lr_scheduler.CosineAnnealingLR(o, T_max=max(1, e * s)), "batch"),
    "plateau": (lambda o, g, e, s: lr_scheduler.ReduceLROnPlateau(o, factor=0.3, patience=max(0, e // 10)), "val_loss"),
    "cyclic": (
        lambda o, g, e, s: lr_scheduler.CyclicLR(
            o, base_lr=g["lr"] / 10, max_lr=g["lr"], step_size_up=max(1, (e * s) // 4),
            cycle_momentum=_cycles_momentum(g),
        ),
        "batch",
    ),
    "onecycle": (
        lambda o, g, e, s: lr_scheduler.OneCycleLR(
            o, max_lr=g["lr"], total_steps=max(2, e * s), cycle_momentum=_cycles_momentum(g)
        ),
        "batch",
    ),
    "cosine_warm_restarts": (
        lambda o, g, e, s: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=max(1, (e * s) // 3)),
        "batch",
    ),
    "lambda": (_lambda, "batch"),
    "polynomial": (lambda o, g, e, s: lr_scheduler.PolynomialLR(o, total_iters=max(1, e * s), power=2.0), "batch"),
}


class Schedule:
    """Drives one named scheduler at the moments it expects."""

    def __init__(self, genome: Mapping, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int):
        factory, self.when = SCHEDULERS[genome["scheduler"]]
        self.scheduler = factory(optimizer, with_effective_lr(genome), epochs, steps_per_epoch) if factory else None
        self.total_steps = max(2, epochs * steps_per_epoch)
        self.steps = 0

    def after_batch(self) -> None:
        self.steps += 1
        # OneCycleLR raises if stepped past its total; the loop never does, but be safe.
        if self.when == "batch" and self.steps < self.total_steps:
            self.scheduler.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.when == "epoch":
            self.scheduler.step()
        elif self.when == "val_loss":
            self.scheduler.step(val_loss)
