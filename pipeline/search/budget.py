"""What a search may spend: evaluations, budget units (epochs), cost (the problem's own unit,
`Result.cost`), seconds, and patience."""
from __future__ import annotations

import time

from pipeline.search.scored import Scored


class Budget:
    """Counts what was spent; `exhausted()` says why the search must stop (or None)."""

    def __init__(self, settings, spent_evaluations: int = 0, spent_seconds: float = 0.0, spent_epochs: int = 0):
        self.settings = settings
        self.evaluations = spent_evaluations
        self.epochs = spent_epochs
        self.cost = 0.0
        self.started = time.monotonic() - spent_seconds
        self.best_score: tuple | None = None
        self.stale_generations = 0
        self.cost_refused = False  # a training was refused because its predicted cost did not fit

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def credit(self, seconds: float) -> None:
        """Count the training time of a result taken from the store as spent, so a search
        that reuses results stops on `time_budget` about where one that trained them would."""
        self.started -= seconds

    def remaining_evaluations(self) -> int | None:
        limit = self.settings.max_evaluations
        return None if not limit else max(0, limit - self.evaluations)

    def affords(self, queued: int, queued_epochs: float, epochs: float, queued_cost: float = 0.0,
                cost: float | None = None) -> bool:
        """Whether one more training of `epochs` fits after `queued` already queued ones.
        With `cost` (predicted by the problem), it must fit in what `max_cost` leaves after
        the queued costs; a training that does not fit stops the search after this
        generation (the search's very first training always runs, so it has an answer).
        Without a prediction, a training starts while any cost is left."""
        remaining = self.remaining_evaluations()
        if remaining is not None and queued >= remaining:
            return False
        if self.settings.max_cost:
            if cost is None and self.cost >= self.settings.max_cost:
                return False
            first = self.evaluations == 0 and queued == 0  # one training always runs: a search has an answer
            if cost is not None and self.cost + queued_cost + cost > self.settings.max_cost and not first:
                self.cost_refused = True
                return False
        limit = self.settings.max_epochs
        return not limit or self.epochs + queued_epochs + epochs <= limit

    def observe_generation(self, best: Scored) -> None:
        key = best.sort_key()
        if self.best_score is None or key > self.best_score:
            self.best_score, self.stale_generations = key, 0
        else:
            self.stale_generations += 1

    def exhausted(self) -> str | None:
        if self.remaining_evaluations() == 0:
            return f"max_evaluations ({self.settings.max_evaluations}) reached"
        if self.settings.max_epochs and self.epochs + min(self.settings.budgets) > self.settings.max_epochs:
            return f"max_epochs ({self.settings.max_epochs}) reached"
        if self.settings.max_cost and (self.cost >= self.settings.max_cost or self.cost_refused):
            return f"max_cost ({self.settings.max_cost:g}) reached"
        if self.settings.time_budget and self.seconds >= self.settings.time_budget:
            return f"time_budget ({self.settings.time_budget:g} s) reached"
        if self.settings.patience and self.stale_generations >= self.settings.patience:
            return f"patience: no improvement in {self.settings.patience} generations"
        return None
