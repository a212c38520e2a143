"""Helpers shared by the tests (fixtures live in conftest.py): tiny params, a search on
the CNN problem through the stage's entry point, temporary DVC projects, subprocesses."""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import torch
import yaml
from torch import nn

from pipeline.genome.genome import genome_key
from pipeline.genome.problem import CNNProblem
from pipeline.params import params_from_dict
from pipeline.search import Task, run_search

ROOT = Path(__file__).resolve().parents[1]

TINY_SPACE = {
    "stages": {"low": 1, "high": 2},
    "width": {"low": 4, "high": 12},
    "norm": ["batch", "group", "none"],
    "optimizer": ["adam", "sgd_momentum"],
    "lr": {"low": 1e-3, "high": 3e-2, "log": True},
    "batch_size": [32, 64],
}

#: A whole pipeline in a minute: the DAG end to end on digits with a 4 x 2 generation search.
TINY = {
    "seed": 0,
    "data": {"dataset": "digits", "val_fraction": 0.15, "test_fraction": 0.2},
    "space": {
        "stages": {"low": 1, "high": 2},
        "width": {"low": 8, "high": 16},
        "norm": ["batch", "group"],
        "residual": [True, False],
        "optimizer": ["adam", "adamw"],
        "lr": {"low": 1.0e-3, "high": 1.0e-2, "log": True},
    },
    "search": {"algorithm": "ga", "population": 4, "generations": 1, "epochs": 1, "incumbent_evaluations": 1},
    "train": {"epochs": 2},
    "fuse": {"latency_repeats": 2, "export": ["onnx", "pt2"]},
    "runtime": {"device": "cpu", "threads": 1, "bf16": False},
    "mlflow": {"experiment": "e2e"},
}


def tiny_params(space=None, seed=3, **search):
    """Params for the mechanics tests, which count trainings: each genome trained once
    (`incumbent_evaluations: 1`) unless a test asks for re-evaluation."""
    settings = {"algorithm": "ga", "population": 6, "generations": 2, "epochs": 1, "hall_of_fame": 3, "backend": "serial",
                "incumbent_evaluations": 1}
    settings.update(search)
    return params_from_dict({"seed": seed, "space": space or TINY_SPACE, "search": settings})


def problem_of(params, data, max_params=None, **options) -> CNNProblem:
    return CNNProblem(params.space, data, max_params=max_params, **options)


def search(params, data, max_params=None, backend=None, **kwargs):
    """A search on the CNN problem through the entry point the stage uses."""
    kwargs.setdefault("log", lambda message: None)
    return run_search(problem_of(params, data, max_params), params.search, params.seed, backend=backend, **kwargs)


def comparable(outcome):
    return [(g, rung, r.key, r.budget, r.score, r.loss, r.metrics.get("params"), r.failure)
            for g, rung, r in outcome.history]


def task_of(genome, budget, seed=0) -> Task:
    return Task(genome_key(genome), genome, budget, seed)


def sh(args, cwd, env, check=True, timeout=900):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def full_params(overrides: dict) -> dict:
    """The project's params.yaml with `overrides` merged in (a `space` replaces the whole
    section): DVC needs every key a stage lists, so a test project starts from the full file."""
    merged = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in overrides.items():
        if isinstance(values, dict) and section != "space" and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def make_project(dest: Path, env: dict, params: dict) -> Path:
    """Copy the project's files (as git sees them) into a fresh git repo whose params.yaml
    is the project's with `params` merged in."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    for name in listed.stdout.splitlines():
        source = ROOT / name
        if source.is_file() and not name.startswith(("metrics/", "dvc.lock")):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (dest / "metrics").mkdir(exist_ok=True)
    (dest / "params.yaml").write_text(yaml.safe_dump(full_params(params), sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        sh(command, dest, env)
    return dest


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def history_without_timing(project: Path) -> list[dict]:
    with open(project / "search" / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.pop("seconds")
    return rows


def randomize_batchnorm(model: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics, as training would."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(c, generator=generator))
            module.bias.data.copy_(torch.randn(c, generator=generator))
