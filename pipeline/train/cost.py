"""What a training costs, in reference seconds: a unit that is the same on every machine.

A reference second is what a fixed cost model predicts one CPU thread of this project's
reference machine (2-core x86-64, the machine the README's numbers come from) takes: the
counted forward FLOPs of the network (PyTorch's FlopCounterMode, so deterministic), three
times over for forward + backward on every training image of an epoch and once for every
validation image, at a calibrated FLOP rate, plus a calibrated time per optimizer step (the
per-batch work that does not scale with FLOPs: kernel launches, the optimizer, the
augmentation) and per epoch. `bench/calibrate_cost.py` fits the three constants on real
trainings and reports how well they predict; a budget in reference seconds therefore gives
the same search and the same final training everywhere, and about that many seconds of one
core here. Wall-clock budgets (`budget.unit: seconds`) are the machine-dependent
alternative.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

#: Calibrated on the reference machine by bench/calibrate_cost.py (bench/results/cost_calibration.json:
#: 64 one-epoch trainings on digits and CIFAR-10, R^2 0.86, median relative error 24-29%: the unit is
#: an accounting of work that tracks one core's seconds, not a stopwatch).
FLOPS_PER_SECOND = 6.5e10
SECONDS_PER_STEP = 2.1e-3
SECONDS_PER_EPOCH = 0.015


@dataclass(frozen=True)
class EpochCost:
    """The parts of one epoch's cost: work in FLOPs and optimizer steps."""

    train_flops: float
    eval_flops: float
    steps: int

    @property
    def reference_seconds(self) -> float:
        return (self.train_flops + self.eval_flops) / FLOPS_PER_SECOND + self.steps * SECONDS_PER_STEP + SECONDS_PER_EPOCH


def epoch_cost(genome: Mapping, forward_flops: float, train_images: int, val_images: int) -> EpochCost:
    """One epoch of `genome` (`forward_flops` per image, one pass) over the given split
    sizes: full batches of training images, then the validation images, twice with the
    flip-averaged evaluation (`tta`)."""
    batch = min(genome["batch_size"], train_images)
    steps = max(1, train_images // batch)
    passes = 2 if genome["tta"] else 1
    return EpochCost(3.0 * forward_flops * steps * batch, float(forward_flops) * val_images * passes, steps)
