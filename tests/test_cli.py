"""The `automl` CLI: bad input is one line on stderr, exit status 2, nothing written."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.helpers import ROOT


def automl(args, cwd, env):
    return subprocess.run([sys.executable, "-m", "stages.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli_env(venv_env):
    venv_env["PYTHONPATH"] = str(ROOT)
    return venv_env


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"search": {"population": "many"}}, "search.population: expected an integer, got 'many'"),
        ({"space": {"loss": ["ctc"]}}, "space.loss: 'ctc' is refused"),
        ({"space": {"width": {"low": 64, "high": 8}}}, "space.width: low (64) is greater than high (8)"),
        ({"trian": {"epochs": 3}}, "trian: unknown key"),
    ],
)
@pytest.mark.parametrize("stage", ["data", "search"])
def test_bad_params_fail_in_one_line_before_any_work(tmp_path, cli_env, params, expected, stage):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = automl([stage], tmp_path, cli_env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no outputs, no mlflow.db


def test_missing_params_file_is_named(tmp_path, cli_env):
    result = automl(["data", "--params", "other.yaml"], tmp_path, cli_env)
    assert result.returncode == 2 and "other.yaml: not found" in result.stderr


def test_train_without_search_output_says_what_to_run(tmp_path, cli_env):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    result = automl(["train"], tmp_path, cli_env)
    assert result.returncode == 2
    assert "search/best.yaml: not found; run the search stage first" in result.stderr
    assert "Traceback" not in result.stderr
