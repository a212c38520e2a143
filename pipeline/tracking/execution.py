"""Which pipeline execution a stage belongs to.

DVC runs every stage of one `dvc repro` (or `dvc exp run`, or one queued experiment's
`dvc exp exec-run`) as a child process of one `dvc` process, through a shell. That process,
named by host, pid and start time (a pid alone can be reused), is the execution: every
stage it runs logs under one `pipeline` run. A stage started by hand (`automl train`, or
`stages.train.run` in Python) has no `dvc` ancestor and is its own execution, shared by the
stages run in the same process.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path


def _is_dvc(cmdline: list[str]) -> bool:
    """`dvc ...`, `python .../bin/dvc ...` or `python -m dvc ...`."""
    head = [Path(arg).name for arg in cmdline[:2]]
    return "dvc" in head or cmdline[1:3] == ["-m", "dvc"]


def execution_id() -> str:
    """'host:pid:start-ms' of the nearest `dvc` ancestor process, else of this process."""
    host = socket.gethostname()
    try:
        import psutil  # a dependency of DVC; without it, each process is an execution
    except ImportError:
        return f"{host}:{os.getpid()}:0"
    me = psutil.Process()
    chosen = me
    try:
        for ancestor in me.parents():
            try:
                if _is_dvc(ancestor.cmdline()):
                    chosen = ancestor
                    break
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
    except psutil.Error:
        pass
    return f"{host}:{chosen.pid}:{int(chosen.create_time() * 1000)}"
