"""Atomic writes and safe loads for every file the pipeline produces.

A write goes to a file of the final name inside a temporary folder next to the target and
is moved into place with `os.replace`, so a crash or Ctrl-C never leaves a half-written
output. The file keeps its final name while it is written because some writers record it
(`torch.save` names the records of its zip archive after the file, `torch.export.save`
wants a `.pt2` suffix): the same content gives the same bytes. It is created by the writer
itself, so it gets the umask's mode like any other file. Loads of torch files always use
`weights_only=True` (no pickle code runs) and name the file when it is unreadable.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from pipeline.errors import UserError, first_line


def project_root(root: Path = Path(".")) -> Path:
    """Where project-wide files live (the MLflow store, the candidate store). `dvc exp run
    --queue` runs stages in a temporary copy of the repo and sets DVC_ROOT to the real one,
    so every experiment shares them."""
    return Path(os.environ.get("DVC_ROOT") or root)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)`, where `tmp_path` has `path`'s name in a temporary folder of
    `path`'s folder, and move the result onto `path` only if it succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp = folder / path.name
        write(tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_torch(path: Path, obj: Any) -> None:
    import torch  # here, not at import: the search engine uses this module without torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: Path) -> Any:
    """torch.load with weights_only=True; a missing, corrupt or unsafe file is a one-line
    UserError that says what was found and never suggests loading it unsafely."""
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; run the stage that produces it first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise UserError(f"{path}: refused, not loaded: it holds pickled Python objects ({found.group(1)}) that "
                            "would run code when loaded; files of this project hold only tensors and plain values") from None
        raise UserError(f"{path}: cannot be read as a torch file (not a torch archive or pickle)") from None
    except Exception as err:  # torch raises many types for corrupt files
        message = first_line(err)
        if "weights_only" in message:
            message = type(err).__name__
        raise UserError(f"{path}: cannot be read as a torch file ({message})") from None


def load_json(path: Path, hint: str = "") -> Any:
    """A JSON file the pipeline wrote; missing or unreadable is a one-line UserError."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found" + (f"; {hint}" if hint else "")) from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not readable JSON ({first_line(err)})") from None


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
