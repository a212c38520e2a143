"""A search killed with SIGKILL resumes to exactly the uninterrupted result, and a real
local Ray cluster gives the same results as the serial and process backends."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, comparable, history_without_timing, search, tiny_params
from tests.test_search import REEVALUATED

RESUME_PARAMS = {
    "seed": 5,
    "space": {"width": {"low": 16, "high": 32}, "stages": {"low": 1, "high": 2}, "norm": ["batch", "group"],
              "optimizer": ["adam", "adamw"]},
    "search": {"population": 6, "generations": 5, "epochs": 2, "backend": "serial"},
    "runtime": {"device": "cpu", "threads": 1},
    "mlflow": {"experiment": "resume"},
}


def automl(stage, cwd, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "stages.cli", stage], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ga", "aging", "surrogate"])
def test_search_killed_after_a_checkpoint_resumes_to_the_same_result(tmp_path, venv_env, algorithm):
    env = dict(venv_env, PYTHONPATH=str(ROOT))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir()
    params = {**RESUME_PARAMS, "search": {**RESUME_PARAMS["search"], "algorithm": algorithm, "offspring": 3}}
    (whole / "params.yaml").write_text(yaml.safe_dump(params))
    assert automl("data", whole, env).wait(timeout=120) == 0
    shutil.copytree(whole, killed)
    process = automl("search", whole, env)
    assert process.wait(timeout=600) == 0, process.communicate()

    process = automl("search", killed, env)
    checkpoint = killed / "search" / "checkpoint" / "latest.json"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the search finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "search" / "best.yaml").exists()

    rerun = automl("search", killed, env)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr
    assert "resuming after generation" in stdout
    assert history_without_timing(killed) == history_without_timing(whole)
    for name in ("best.yaml", "hall_of_fame.json"):
        assert (killed / "search" / name).read_text() == (whole / "search" / name).read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ray_cluster(venv_env):
    """`ray start --head` on 127.0.0.1 for the test, stopped after. Ray's socket paths must
    stay under 108 bytes, so its temp dir is a short one under /tmp."""
    import tempfile

    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray = Path(sys.executable).parent / "ray"
    port = _free_port()
    env = dict(venv_env, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT))
    started = subprocess.run(
        [str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_cluster_gives_the_same_results_as_serial(tiny_digits, ray_cluster, monkeypatch):
    """Also for the surrogate with continuing rungs, whose states travel back from Ray workers,
    and for the default's re-evaluation of the incumbent (repeats with seeds of their own)."""
    import ray

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for settings in ({}, {"algorithm": "surrogate", "population": 6, "offspring": 4,
                          "fidelity": {"rungs": [0.5, 2], "eta": 2}}, REEVALUATED):
        serial = search(tiny_params(backend="serial", **settings), tiny_digits)
        on_ray = search(tiny_params(backend="ray", ray_address=ray_cluster, workers=2, **settings), tiny_digits)
        assert not ray.is_initialized()  # the entry point closed the connection it opened
        assert comparable(on_ray) == comparable(serial)
