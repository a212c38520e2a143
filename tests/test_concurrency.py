"""Two queued DVC experiments running at once on the default SQLite store both finish with
all their MLflow runs (WAL mode plus retries on 'database is locked')."""
from __future__ import annotations

import json
import time

import pytest

from tests.helpers import TINY, make_project, sh

pytestmark = pytest.mark.slow


def test_two_queued_experiments_run_concurrently(tmp_path, dvc_env):
    project = make_project(tmp_path / "queue", dvc_env, TINY)
    sh(["dvc", "exp", "run", "--queue", "-S", "train.epochs=1", "-n", "exp-one"], project, dvc_env)
    sh(["dvc", "exp", "run", "--queue", "-S", "train.epochs=2", "-n", "exp-two"], project, dvc_env)
    sh(["dvc", "queue", "start", "-j", "2"], project, dvc_env)
    deadline = time.time() + 900
    try:
        while time.time() < deadline:
            status = sh(["dvc", "queue", "status"], project, dvc_env).stdout
            if "Running" not in status and "Queued" not in status:
                break
            time.sleep(3)
        else:
            raise AssertionError(f"queue did not finish:\n{status}")
    finally:
        sh(["dvc", "queue", "stop", "--kill"], project, dvc_env, check=False)
    logs = "".join(sh(["dvc", "queue", "logs", name], project, dvc_env, check=False).stdout for name in ("exp-one", "exp-two"))
    assert status.count("Success") == 2, status + logs[-4000:]
    assert "database is locked" not in logs

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["e2e"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("automl.pipeline") == "true"]
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    assert {p.data.tags["automl.dvc_experiment"] for p in parents} == {"exp-one", "exp-two"}
    for parent in parents:
        stages = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert {r.data.tags["automl.stage"] for r in stages} == {"data", "search", "train", "fuse", "evaluate"}
    shown = json.dumps(json.loads(sh(["dvc", "exp", "show", "--json"], project, dvc_env).stdout))
    assert "exp-one" in shown and "exp-two" in shown
