"""States of candidates racing through continuing rungs, kept only while they may be promoted.

With `search.fidelity.continue` on, a candidate trained at a rung returns its training
state (weights, optimizer, scheduler, RNG streams: opaque bytes to the engine), which comes
back from whatever worker trained it. The evaluator keeps each state in a temporary folder
until the rung's ranking is known: promoted candidates hand theirs to the next rung (and
it is deleted there), eliminated ones are deleted at once, and the folder is removed when
the search ends. So at most one rung's candidates have a state on disk at a time: about
`offspring` (or `population`) x 3 x the model's parameter bytes for an Adam-family
optimizer (weights and two moments), e.g. 10 x 3 x 4 MB for a 1M-parameter network.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path


class RungStates:
    def __init__(self):
        self.folder: Path | None = None
        self.peak = 0
        self._bytes = 0

    def _path(self, key: str) -> Path:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="automl-rungs-"))
        return self.folder / hashlib.sha256(key.encode()).hexdigest()

    def put(self, key: str, state: bytes) -> None:
        self._path(key).write_bytes(state)
        self._bytes += len(state)
        self.peak = max(self.peak, self._bytes)

    def take(self, key: str) -> bytes | None:
        """The state kept for `key` (deleted from disk), or None."""
        path = self._path(key)
        if not path.exists():
            return None
        state = path.read_bytes()
        self.discard(key)
        return state

    def discard(self, key: str) -> None:
        path = self._path(key)
        if path.exists():
            self._bytes -= path.stat().st_size
            path.unlink()

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder, self._bytes = None, 0
