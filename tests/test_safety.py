"""Unsafe or broken files and unreachable services fail clearly, never run code."""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from pipeline.deploy.artifacts import ModelInfo, load_model, save_model
from pipeline.errors import UserError
from pipeline.genome.genome import default_genome
from pipeline.nn.model import build_model
from tests.helpers import ROOT


class RunsCode:
    """Unpickling this calls os.system, the classic malicious model file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_model_file_whose_pickle_runs_code_is_refused_and_the_code_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"format": "automl-model/1", "state_dict": {}, "payload": RunsCode(marker)}, path)
    with pytest.raises(UserError, match=r"model.pt: refused, not loaded: it holds pickled Python objects "
                                        r"\(posix.system\) that would run code") as caught:
        load_model(path)
    assert not marker.exists()
    assert "weights_only" not in str(caught.value) and "False" not in str(caught.value)  # no unsafe advice
    # the same trick inside a plain pickle is refused too
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(UserError, match="raw.pt: (refused, not loaded|cannot be read as a torch file)") as caught:
        load_model(raw)
    assert not marker.exists() and "weights_only" not in str(caught.value)


def _saved_model(path):
    genome = default_genome()
    model = build_model(genome, (1, 8, 8), 10)
    save_model(path, model, ModelInfo(genome, [str(i) for i in range(10)], [1, 8, 8], [0.0], [1.0], fused=False))


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_corrupt_model_file_is_named(tmp_path, damage):
    path = tmp_path / "model.pt"
    _saved_model(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:100] + bytes(200) + data[300:])
    with pytest.raises(UserError) as err:
        load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_model_file_of_another_shape_is_named(tmp_path):
    path = tmp_path / "model.pt"
    _saved_model(path)
    raw = torch.load(path, weights_only=True)
    raw["genome"]["width"] = 48
    torch.save(raw, path)
    with pytest.raises(UserError, match="model.pt: does not match its genome"):
        load_model(path)


def test_unreachable_tracking_server_fails_at_stage_start_in_one_line(tmp_path, venv_env):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seed": 0}))
    env = dict(venv_env, PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    result = subprocess.run([sys.executable, "-m", "stages.cli", "data"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"MLflow tracking server http://127.0.0.1:{port} cannot be reached" in lines[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()


def test_bad_cli_option_fails_with_usage_and_status_2(tmp_path, venv_env):
    env = dict(venv_env, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "stages.cli", "search", "--bogus"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "No such option" in lines[0] and "--bogus" in lines[0]
    result = subprocess.run([sys.executable, "-m", "stages.cli", "evaluate", "--model", "x.pt"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--model and --data go together" in result.stderr


OOM_SCRIPT = r"""
import resource, sys
import torch
from pipeline.data.types import PreparedData, Split
from pipeline.genome.genome import default_genome
from pipeline.genome.problem import CNNProblem
from pipeline.params import params_from_dict
from tests.helpers import task_of

size = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 1024**3, size + 2 * 1024**3))  # 2 GiB more than now
images = torch.zeros(64, 3, 384, 384, dtype=torch.uint8)
split = Split(images, torch.arange(64) % 2)
data = PreparedData(split, split, split, ["a", "b"], [0.5] * 3, [0.25] * 3)
genome = default_genome()
genome.update(width=512, stages=1, batch_size=64)  # one activation alone is 19 GiB
result = CNNProblem(params_from_dict({}).space, data).evaluate(task_of(genome, 1))
print(result.failure, "|", result.detail)
"""


def test_real_out_of_memory_is_a_recorded_failure(tmp_path, venv_env):
    """A real allocation failure (address space capped with RLIMIT_AS in a child process)."""
    env = dict(venv_env, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", OOM_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("out_of_memory |"), result.stdout
