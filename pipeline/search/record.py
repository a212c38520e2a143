"""The search record: which search last ran here and how far it got.

Results live in the candidate store, so a search never needs a checkpoint of its own to
continue: run again, it replays its (seeded) trajectory and every evaluation it already
made comes back from the store, which makes a resumed, extended or shortened search equal
to a fresh one with the same settings. What the record adds is the explanation: after each
generation it holds the search's identity (seed, the settings that change results, the
space, the problem's fingerprint) and its progress, and the next search says what it
continues and which keys changed.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.fileio import write_text
from pipeline.search.space import describe

FORMAT = "automl-search-record/1"


@dataclass
class SearchRecord:
    identity: dict
    generation: int
    last_generation: int
    evaluations: int
    trained: int
    reused: int
    stop_reason: str | None = None
    format: str = FORMAT


def identity_of(problem, settings, seed: int, runtime_keys) -> dict:
    """What determines a search's results: seed, settings (not where it runs), space, problem."""
    values = {k: v for k, v in settings.model_dump(mode="json").items() if k not in runtime_keys}
    values["offspring"] = settings.proposals_per_generation  # 0 means one per worker: what it came to
    return {
        "seed": seed,
        "search": values,
        "space": {name: describe(gene) for name, gene in problem.space.genes},
        "problem": problem.fingerprint,
    }


def save_record(path: Path, record: SearchRecord) -> None:
    write_text(Path(path), json.dumps(asdict(record), indent=1) + "\n")


def load_record(path: Path) -> SearchRecord | None:
    try:
        data = json.loads(Path(path).read_text())
        return SearchRecord(**data) if data.get("format") == FORMAT else None
    except (OSError, ValueError, TypeError):
        return None


def _flat(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict):
        out = {}
        for key, value in values.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): values}


def changed_keys(old: dict, new: dict) -> list[str]:
    """'search.generations 3 -> 6' for each value that differs (the problem fingerprint,
    which covers the data and the trainer's code, is named as such)."""
    before, after = _flat(old), _flat(new)
    out = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            if key == "problem":
                out.append("the data or the trainer's code (problem fingerprint)")
            else:
                out.append(f"{key} {before.get(key, 'unset')} -> {after.get(key, 'unset')}")
    return out


def explain(old: SearchRecord | None, identity: dict, log: Callable[[str], None]) -> None:
    """Say what this search continues and what changed since the last one."""
    if old is None:
        return
    changes = changed_keys(old.identity, identity)
    if not changes and old.stop_reason is None and old.generation < old.last_generation:
        log(f"search: resuming after generation {old.generation}; its results come from the store")
    elif not changes:
        log("search: the same search as last time; every result comes from the store")
    else:
        log(f"search: since the last search (generation {old.generation} reached): {'; '.join(changes)}; "
            "results it shares with this one come from the store, the rest is trained")
