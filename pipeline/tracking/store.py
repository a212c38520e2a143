"""The MLflow store: where it is, making it safe for several writers, and failing early.

The default store is `sqlite:///mlflow.db` at the project root with artifacts in
`mlartifacts/`; `mlflow.tracking_uri` in params.yaml, or `MLFLOW_TRACKING_URI` (which wins),
points elsewhere, such as a team server. SQLite gets write-ahead logging (readers and a
second experiment work while a stage writes), creation under a file lock (two experiments
starting at once would both create the schema), and retries while it reports "database is
locked". A tracking server that does not answer fails the stage at once, in one line.
"""
from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import time
from pathlib import Path

from filelock import FileLock

from pipeline.errors import UserError
from pipeline.fileio import project_root
from pipeline.interrupts import critical


def tracking_uri(configured: str, root: Path) -> str:
    default = f"sqlite:///{(project_root(root) / 'mlflow.db').resolve()}"
    return os.environ.get("MLFLOW_TRACKING_URI") or configured or default


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def shielded(method):
    """Run an MLflow write inside `interrupts.critical()` and retry it while SQLite reports
    'database is locked' (another experiment writing the same store), for up to a minute."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        delay = 0.05
        deadline = time.monotonic() + 60
        while True:
            try:
                with critical():
                    return method(*args, **kwargs)
            except Exception as err:
                if "database is locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    return wrapper


def store_lock(uri: str):
    """An exclusive, portable lock beside a SQLite store (nothing to lock for a server)."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    lock_path = Path(uri[len("sqlite:///"):] + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path))


def enable_wal(uri: str) -> None:
    """Write-ahead logging; the setting is stored in the database file, so this runs once."""
    if not uri.startswith("sqlite:///"):
        return
    import sqlite3

    path = uri[len("sqlite:///"):]
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as connection:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail at the start of a stage, in one line, when a tracking server does not answer;
    MLflow's own client would retry with backoff for minutes, after the work was done."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            response.read(64)
    except urllib.error.HTTPError:
        return  # it answered; MLflow will report anything more specific
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"MLflow tracking server {uri} cannot be reached ({reason}); start it or unset MLFLOW_TRACKING_URI") from None
