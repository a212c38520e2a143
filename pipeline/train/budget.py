"""One budget for the whole pipeline: how much of it the search may spend, and how many
epochs the winner trains with what is left.

`budget.total` is the training the user pays for, search and final training together, in
`budget.unit`: `reference_seconds` (the default: `pipeline.train.cost`'s machine-independent
unit, so the same params.yaml gives the same search and the same final training
everywhere), or `seconds` of wall clock (machine-dependent: the search stops on the clock,
and the final epochs follow from the speed the search measured). The search may spend
`search_share` of it; with `train.epochs: auto`, the final training gets what the search
left, divided by what one epoch of the chosen genome costs (its selection run on the
training split plus, with `train.refit`, its refit on training + validation). An
exhausted budget still trains the winner for one epoch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Annotated, Mapping

from pydantic import Field

from pipeline.nn.measure import forward_flops
from pipeline.train.cost import epoch_cost
from pipeline.validation import Between, Number, OneOf, Section

UNITS = ("reference_seconds", "seconds")


class BudgetSettings(Section):
    unit: Annotated[str, OneOf(UNITS)] = Field(
        "reference_seconds", description="reference_seconds: machine-independent (reproducible); seconds: wall clock "
                                         "(machine-dependent)")
    total: Annotated[Number, Between(0.0, 10**9)] = Field(
        100.0, description="search + final training, in `unit`; 0 = no pipeline budget (search.* and train.epochs "
                           "decide alone)")
    search_share: Annotated[Number, Between(0.0, 1.0)] = Field(
        0.3, description="the share of `total` the search may spend; the final training gets the rest")

    @property
    def search_allowance(self) -> float:
        return self.total * self.search_share


@dataclass
class BudgetReport:
    """What the search stage hands the train stage (search/budget.json)."""

    unit: str
    total: float
    search_share: float
    search_spent: float
    # Measured by the search (wall seconds per reference second): what turns reference costs
    # into wall seconds for `unit: seconds`; None for `reference_seconds`, whose final
    # training never depends on how fast this machine ran (the stage writes it to the timings).
    seconds_per_reference_second: float | None

    def as_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @property
    def left(self) -> float:
        return max(0.0, self.total - self.search_spent)


@dataclass(frozen=True)
class FinalPlan:
    epochs: int
    epoch_cost: float  # in the budget's unit, refit included
    left: float

    def describe(self, unit: str) -> str:
        return (f"{self.left:.1f} {unit.replace('_', ' ')} left after the search: {self.epochs} epochs at "
                f"{self.epoch_cost:.2f} per epoch")


def final_epochs(report: BudgetReport, epoch_reference_seconds: float) -> FinalPlan:
    """Epochs of the final training that the budget left by the search pays for (at least one)."""
    epoch_cost = epoch_reference_seconds
    if report.unit == "seconds":
        epoch_cost *= report.seconds_per_reference_second
    epochs = max(1, math.floor(report.left / epoch_cost)) if epoch_cost > 0 else 1
    return FinalPlan(min(epochs, 100_000), epoch_cost, report.left)


def search_settings(search, budget: BudgetSettings):
    """The search's settings with the budget's allowance as one more stopping rule
    (`max_cost` in reference seconds, `time_budget` in seconds; a tighter limit the user set
    stays)."""
    if not budget.total:
        return search
    key = "max_cost" if budget.unit == "reference_seconds" else "time_budget"
    limit = getattr(search, key)
    return search.model_copy(update={key: min(limit, budget.search_allowance) if limit else budget.search_allowance})


def report_of(outcome, budget: BudgetSettings) -> BudgetReport:
    """What the search spent of the budget, and how fast this machine trained (wall seconds
    per reference second, over the candidates that finished)."""
    speed = machine_speed(outcome)
    spent = outcome.cost_spent if budget.unit == "reference_seconds" else outcome.seconds_spent
    return BudgetReport(budget.unit, budget.total, budget.search_share, spent, speed if budget.unit == "seconds" else None)


def machine_speed(outcome) -> float:
    """Wall seconds per reference second over the search's finished candidates (1.0 if none)."""
    finished = [r for _, _, r in outcome.history if not r.failed and r.cost]
    return sum(r.seconds for r in finished) / sum(r.cost for r in finished) if finished else 1.0


def final_epoch_cost(genome: Mapping, data, refit: bool) -> float:
    """Reference seconds of one epoch of the final training: the selection run on the
    training split, and with `refit` the run on training + validation."""
    flops = forward_flops(genome, data.input_shape, data.num_classes)
    train, val = len(data.train), len(data.val)
    selection = epoch_cost(genome, flops, train, val).reference_seconds
    return selection + (epoch_cost(genome, flops, train + val, val).reference_seconds if refit else 0.0)
