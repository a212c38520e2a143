"""Shared fixtures: tiny real data (a slice of the embedded digits) and subprocess
environments. Shared functions are in tests/helpers.py."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from pipeline.data.prepare import load_digits, split_dataset
from pipeline.data.types import PreparedData, Split


@pytest.fixture(autouse=True)
def _deterministic_cpu():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield


@pytest.fixture(scope="session")
def digits() -> PreparedData:
    images, labels, names = load_digits()
    return split_dataset(images, labels, names, 0.15, 0.2, seed=0)


@pytest.fixture(scope="session")
def tiny_digits(digits) -> PreparedData:
    """200 train / 100 val / 100 test digits: enough to learn something in a second."""

    def head(split: Split, n: int) -> Split:
        return Split(split.images[:n], split.labels[:n])

    return PreparedData(head(digits.train, 200), head(digits.val, 100), head(digits.test, 100),
                        digits.class_names, digits.mean, digits.std)


@pytest.fixture
def venv_env() -> dict:
    """The environment for subprocesses: the interpreter's bin dir first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(os.sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture(scope="module")
def dvc_env():
    """For `dvc` and `git` in temporary projects: the venv first, no analytics, an author."""
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment["DVC_NO_ANALYTICS"] = "1"
    environment["GIT_AUTHOR_NAME"] = environment["GIT_COMMITTER_NAME"] = "test"
    environment["GIT_AUTHOR_EMAIL"] = environment["GIT_COMMITTER_EMAIL"] = "test@example.com"
    return environment
