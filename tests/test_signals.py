"""Signals and abandoned runs: a stopped stage ends its MLflow runs as KILLED and writes no
partial output; a stage killed outright is marked FAILED by the next stage start."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import yaml

from tests.helpers import ROOT

SLOW_SEARCH = {
    "seed": 0,
    "space": {"width": {"low": 32, "high": 64}, "stages": {"low": 2, "high": 3}},
    "search": {"population": 40, "generations": 50, "epochs": 3, "backend": "serial"},
    "runtime": {"device": "cpu", "threads": 1},
    "mlflow": {"experiment": "signals"},
}


def start(stage, cwd, env):
    return subprocess.Popen([sys.executable, "-m", "stages.cli", stage], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_individual_runs(cwd, process, timeout=120):
    """Until the search has logged at least one individual (it is mid-search)."""
    deadline = time.time() + timeout
    mlflow.set_tracking_uri(f"sqlite:///{cwd / 'mlflow.db'}")
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        if (cwd / "mlflow.db").exists():
            try:
                runs = mlflow.search_runs(experiment_names=["signals"], filter_string="tags.`automl.kind` = 'individual'",
                                          output_format="list")
            except Exception:
                runs = []
            if runs:
                return
        time.sleep(0.5)
    raise AssertionError("the search never logged an individual")


@pytest.fixture
def prepared(tmp_path, venv_env):
    env = dict(venv_env, PYTHONPATH=str(ROOT))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(SLOW_SEARCH))
    subprocess.run([sys.executable, "-m", "stages.cli", "data"], cwd=tmp_path, env=env, check=True, capture_output=True)
    return tmp_path, env


def runs_by_stage(cwd):
    mlflow.set_tracking_uri(f"sqlite:///{cwd / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["signals"], output_format="list")
    return runs


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopped_stage_marks_runs_killed_and_writes_nothing(prepared, signum):
    cwd, env = prepared
    process = start("search", cwd, env)
    wait_for_individual_runs(cwd, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    # No partial outputs; only the resumable checkpoint may exist, and it is complete JSON.
    written = sorted(str(p.relative_to(cwd)) for p in (cwd / "search").rglob("*") if p.is_file()) if (cwd / "search").exists() else []
    assert all(name.startswith("search/checkpoint/") and name.endswith(".json") for name in written), written
    for name in written:
        json.loads((cwd / name).read_text())
    runs = runs_by_stage(cwd)
    search = [r for r in runs if r.data.tags.get("automl.stage") == "search"]
    assert [r.info.status for r in search] == ["KILLED"]
    parent = [r for r in runs if r.info.run_id == search[0].data.tags["mlflow.parentRunId"]]
    assert parent[0].info.status == "KILLED"
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_run_left_running_by_sigkill_is_failed_at_next_stage_start(prepared):
    cwd, env = prepared
    process = start("search", cwd, env)
    wait_for_individual_runs(cwd, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    running = [r for r in runs_by_stage(cwd) if r.info.status == "RUNNING"]
    assert {r.data.tags.get("automl.stage") for r in running} >= {"search"}
    subprocess.run([sys.executable, "-m", "stages.cli", "data"], cwd=cwd, env=env, check=True, capture_output=True)
    runs = runs_by_stage(cwd)
    search = [r for r in runs if r.data.tags.get("automl.stage") == "search"]
    assert [r.info.status for r in search] == ["FAILED"]
    assert "abandoned" in search[0].data.tags["automl.error"]
    old_parent = [r for r in runs if r.info.run_id == search[0].data.tags["mlflow.parentRunId"]][0]
    assert old_parent.info.status == "FAILED"
    # The new execution's pipeline run ended with its stage: nothing is left RUNNING.
    assert not [r for r in runs if r.info.status == "RUNNING"]
