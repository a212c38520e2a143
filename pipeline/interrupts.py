"""Stop cleanly on SIGINT/SIGTERM without tearing a write in half.

The handler turns a signal into `KeyboardInterrupt`, except inside a `critical()` section
(an MLflow write, a file being moved into place), where it only notes the signal and the
interrupt is raised when the section ends. An interrupt raised in the middle of an SQLite
transaction would leave that connection holding the write lock, and every later write of
the stage, including the one that marks its run KILLED, would fail with "database is locked".
"""
from __future__ import annotations

import contextlib
import signal

_depth = 0
_pending: int | None = None


def _handler(signum, frame):
    global _pending
    if _depth:
        _pending = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


@contextlib.contextmanager
def critical():
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            raise KeyboardInterrupt(f"signal {signum}")
