"""The team setup: a real PostgreSQL and a real `mlflow server` on 127.0.0.1, a tiny
pipeline logging to it over HTTP, runs read back, both servers stopped."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (as user postgres when we are root)."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed here (CI installs it)")
    base = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda args: subprocess.run(as_user + args, capture_output=True, text=True, timeout=120, cwd="/tmp")
    result = run([initdb, "-D", str(data), "-A", "trust", "-U", "mlflow", "--no-sync"])
    assert result.returncode == 0, result.stderr
    result = run([pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "start",
                  "-o", f"-h 127.0.0.1 -p {port} -k {sockets} -F"])
    assert result.returncode == 0, result.stderr + (base / "log").read_text()
    try:
        created = run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "-d", "postgres",
                       "-c", "CREATE DATABASE mlflow"])
        assert created.returncode == 0, created.stderr
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def mlflow_server(postgres, tmp_path, venv_env):
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", postgres,
         "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        env=venv_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            assert server.poll() is None, server.communicate()[1][-3000:]
            time.sleep(0.5)
    else:
        raise AssertionError("mlflow server did not come up")
    try:
        yield uri
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


def test_pipeline_logs_to_a_team_server_backed_by_postgres(mlflow_server, tmp_path, venv_env):
    import mlflow

    params = {
        "seed": 0,
        "space": {"width": {"low": 8, "high": 12}},
        "search": {"population": 3, "generations": 1, "epochs": 1, "backend": "serial"},
        "train": {"epochs": 1},
        "fuse": {"latency_repeats": 1, "export": ["onnx"]},
        "runtime": {"device": "cpu", "threads": 1},
        "mlflow": {"experiment": "team"},
    }
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(venv_env, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=mlflow_server)
    for stage in ("data", "search", "train", "fuse", "evaluate"):
        result = subprocess.run([sys.executable, "-m", "stages.cli", stage], cwd=project, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    assert not (project / "mlflow.db").exists()  # everything went to the server
    mlflow.set_tracking_uri(mlflow_server)
    runs = mlflow.search_runs(experiment_names=["team"], output_format="list")
    stages = {r.data.tags.get("automl.stage") for r in runs if r.data.tags.get("automl.stage")}
    assert stages == {"data", "search", "train", "fuse", "evaluate"}
    assert all(r.info.status == "FINISHED" for r in runs)
    individuals = [r for r in runs if r.data.tags.get("automl.kind") == "individual"]
    assert len(individuals) >= 3
