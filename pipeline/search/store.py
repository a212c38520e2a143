"""The candidate store: every result ever evaluated, shared by every search of a project.

A result is keyed by what determines it: the problem's fingerprint (for the CNN problem:
the data, the trainer's code, torch, the device and the evaluation settings), the genome,
its budget and its seed (derived from the run seed). A later search that asks for the same
evaluation (a resumed or extended search, another algorithm, a narrowed space, a rerun after
`dvc exp apply`) takes it from here instead of training it again.

One JSON file per result (`<root>/<key[:2]>/<key>.json`), written to a temporary file and
renamed into place: two searches may write at once (the same key has the same content, the
last rename wins), a write killed halfway leaves only a stray temporary file (never a torn
entry), and nothing is pickled. Entries are small (a genome, scores, a curve).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.search.problem import Result, Task

FORMAT = "automl-result/1"


def store_key(fingerprint: str, task: Task) -> str:
    text = json.dumps([FORMAT, fingerprint, task.key, task.budget, task.seed] + ([task.horizon] if task.horizon else []))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StoreInfo:
    root: Path
    entries: int
    bytes: int
    stray: int  # temporary files of interrupted writes


class ResultStore:
    def __init__(self, root: Path, fingerprint: str):
        self.root, self.fingerprint = Path(root), fingerprint

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, task: Task) -> Result | None:
        """The stored result of this evaluation, or None (also for an unreadable entry,
        which is then simply evaluated and written again)."""
        path = self._path(store_key(self.fingerprint, task))
        try:
            data = json.loads(path.read_text())
            result = Result.from_dict(data["result"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return result if result.key == task.key and result.budget == task.budget else None

    def put(self, task: Task, result: Result) -> None:
        path = self._path(store_key(self.fingerprint, task))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"format": FORMAT, "fingerprint": self.fingerprint, "result": result.as_dict()}, handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def store_info(root: Path) -> StoreInfo:
    """Entries, bytes and stray temporary files under `root`; safe while searches write
    (a file renamed or removed between listing and reading is skipped)."""
    root = Path(root)
    entries = size = stray = 0
    if root.is_dir():
        for path in root.rglob("*"):
            try:
                status = path.stat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(status.st_mode):
                continue
            size += status.st_size
            if path.suffix == ".tmp":
                stray += 1
            elif path.suffix == ".json":
                entries += 1
    return StoreInfo(root, entries, size, stray)


def clear_store(root: Path) -> StoreInfo:
    """Delete every entry; returns what was there."""
    info = store_info(root)
    if Path(root).is_dir():
        shutil.rmtree(root)
    return info
