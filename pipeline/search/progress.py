"""Progress of a search: one tqdm bar over all expected trainings (with rate and ETA) on a
terminal, and one summary line per generation everywhere (DVC logs and CI stay readable)."""
from __future__ import annotations

import math
import sys
from typing import TextIO

from tqdm import tqdm


def expected_trainings(settings, last_generation: int) -> int | None:
    """How many trainings the settings allow, for the bar's total (None when unbounded)."""
    per_generation, alive = 0, settings.population
    for _ in settings.budgets:
        per_generation += alive
        alive = math.ceil(alive / settings.fidelity.eta)
    total = per_generation * (last_generation + 1) if last_generation < 10**9 else None
    if settings.max_evaluations:
        total = min(total or settings.max_evaluations, settings.max_evaluations)
    return total


class SearchProgress:
    def __init__(self, settings, last_generation: int, stream: TextIO = sys.stderr):
        self.last = last_generation
        live = hasattr(stream, "isatty") and stream.isatty()
        self.bar = tqdm(total=expected_trainings(settings, last_generation), desc="search", unit="candidate",
                        file=stream, disable=not live, dynamic_ncols=True, leave=False)
        self.best = 0.0
        self.reused = 0

    def candidate(self, result, reused: bool) -> None:
        self.best = max(self.best, result.score)
        self.reused += reused
        self.bar.set_postfix_str(f"best {self.best:.4f}" + (f", {self.reused} from the store" if self.reused else ""),
                                 refresh=False)
        self.bar.update()

    def generation(self, record) -> None:
        last = "" if self.last >= 10**9 else f"/{self.last}"
        lowered = f"incumbent now {record.incumbent:.4f}, " if record.incumbent < record.best else ""
        line = (f"search: generation {record.generation}{last} best so far {record.best:.4f} "
                f"({lowered}population best {record.population_best:.4f}, mean {record.mean:.4f}) "
                f"trained {record.evaluated - record.reused} reused {record.reused} failed {record.failed} "
                f"({record.seconds:.1f}s)")
        if self.bar.disable:
            print(line, flush=True)
        else:
            self.bar.write(line, file=sys.stdout)

    def close(self) -> None:
        self.bar.close()
