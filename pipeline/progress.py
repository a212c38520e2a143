"""A progress line per generation: a live bar on a terminal, one plain line otherwise.

On a TTY the bar redraws in place after every trained candidate; without one (DVC logs,
CI) only the finished generation's summary is printed, so logs stay readable.
"""
from __future__ import annotations

import sys
from typing import TextIO


class GenerationProgress:
    def __init__(self, population: int, last_generation: int, stream: TextIO = sys.stderr):
        self.population, self.last, self.stream = population, last_generation, stream
        self.live = hasattr(stream, "isatty") and stream.isatty()
        self.done = 0
        self.best = 0.0

    def candidate(self, result) -> None:
        self.done += 1
        self.best = max(self.best, result.val_accuracy)
        if self.live:
            filled = min(20, round(20 * self.done / max(1, self.population)))
            self.stream.write(f"\r  [{'#' * filled}{'.' * (20 - filled)}] {self.done} trained, best {self.best:.4f}  ")
            self.stream.flush()

    def generation(self, record) -> None:
        if self.live:
            self.stream.write("\r" + " " * 60 + "\r")
        last = "" if self.last >= 10**9 else f"/{self.last}"
        print(f"search: generation {record.generation}{last} best {record.best:.4f} mean {record.mean:.4f} "
              f"trained {record.evaluated} failed {record.failed} ({record.seconds:.1f}s)", flush=True)
        self.done = 0

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
