"""The search's checkpoint: everything needed to continue exactly where it stopped.

One JSON file, written atomically after every generation (`latest.json`, the one before
kept as `previous.json` in case the latest is corrupt): the population and the strategy's
own state, the memo, history, hall of fame, logbook, budgets and the random state. Results
are stored once, in the memo, and referenced by memo key everywhere else.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from pipeline.fileio import write_text

FORMAT = "automl-search-checkpoint/2"


@dataclass
class Checkpoint:
    params_hash: str
    generation: int
    strategy_state: dict
    memo: dict
    history: list  # [[generation, rung, memo_key], ...]
    hall_of_fame: list  # [[genome, memo_key, rung], ...]
    generations: list
    random_state: list
    evaluations: int
    epochs: int
    seconds: float
    memo_hits: int
    best_score: list | None
    stale_generations: int
    stop_reason: str | None = None
    format: str = FORMAT


def random_state_to_json() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def restore_random_state(data: list) -> None:
    random.setstate((data[0], tuple(data[1]), data[2]))


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Atomic write; the previous checkpoint is kept as a fallback for a corrupt latest."""
    path = Path(path)
    if path.exists():
        path.replace(path.with_name("previous.json"))
    write_text(path, json.dumps(asdict(checkpoint)))


def load_checkpoint(path: Path, params_hash: str, log: Callable[[str], None]) -> Checkpoint | None:
    """The latest usable checkpoint made under the same params, else None (with a message)."""
    path = Path(path)
    for candidate in (path, path.with_name("previous.json")):
        if not candidate.exists():
            continue
        try:
            data = json.loads(candidate.read_text())
            if data.get("format") != FORMAT:
                raise ValueError("unknown format")
            checkpoint = Checkpoint(**data)
        except (ValueError, TypeError, OSError) as err:
            log(f"search: {candidate} is unreadable ({err}); trying the previous checkpoint")
            continue
        if checkpoint.params_hash != params_hash:
            log(f"search: {candidate} was made with different search params; starting afresh")
            return None
        return checkpoint
    return None
