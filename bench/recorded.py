"""A benchmark's runs kept in one JSON file: run what is missing, then plot and tabulate.

The file holds every finished run, so a stopped benchmark resumes where it was; the table
goes into the README between the markers named after the file (`time-to-accuracy-default`
for time_to_accuracy_default.json), if the README has them.
"""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from bench.readme import update_readme


def parse_sets(items: Sequence[str]) -> tuple:
    """`--set key=value` arguments as (dotted key, YAML value) pairs."""
    return tuple(tuple(item.split("=", 1)) for item in items)


def recorded_runs(out: Path) -> list:
    """The runs `out` holds (none when it does not exist yet)."""
    return json.loads(out.read_text())["runs"] if out.exists() else []


def run_missing(run_one: Callable, jobs: list, workers: int, out: Path, header: dict, runs: list, hidden: str) -> list:
    """Each job on its own process, `workers` at a time; every finished run is printed
    (less its `hidden` field) and written to `out` with `header` at once."""
    with ProcessPoolExecutor(workers) as pool:
        for run in pool.map(run_one, jobs):
            runs.append(run)
            print({k: v for k, v in run.items() if k != hidden}, flush=True)
            out.write_text(json.dumps({**header, "runs": runs}, indent=1) + "\n")
    return runs


def publish(runs: list, out: Path, plot: Callable, table: Callable) -> None:
    """The plot beside `out` as PNG, the table printed and put into the README."""
    plot(runs, out.with_suffix(".png"))
    text = table(runs)
    print(text)
    marker = out.stem.replace("_", "-")
    print("README table updated" if update_readme(text, marker) else f"README has no {marker} markers")
