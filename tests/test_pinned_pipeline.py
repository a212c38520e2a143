"""With one choice pinned, the whole pipeline (all five stages, MLflow included) runs on
digits with a tiny budget; a refused criterion stops at once with its reason."""
from __future__ import annotations

import json
import os

import mlflow
import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.params import params_from_dict

PINNED = [
    ("optimizer", "adagrad"),
    ("loss", "kl_div"),
    ("loss", "triplet_margin"),
    ("norm", "layer"),
    ("attention", "self"),
    ("scheduler", "plateau"),
    ("pooling", "none"),
    ("global_pool", "flatten"),
    ("augment", "cutout"),
]


def tiny(gene, value):
    return {
        "seed": 1,
        "space": {"width": {"low": 8, "high": 12}, gene: [value]},
        "search": {"population": 3, "generations": 1, "epochs": 1, "backend": "serial"},
        "train": {"epochs": 1},
        "fuse": {"latency_repeats": 1},
        "runtime": {"device": "cpu", "threads": 1},
        "mlflow": {"experiment": f"pinned-{gene}-{value}"},
    }


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("gene,value", PINNED, ids=[f"{g}={v}" for g, v in PINNED])
def test_pipeline_runs_with_one_choice_pinned(in_tmp, gene, value):
    from stages import data, evaluate, fuse, search, train

    params = params_from_dict(tiny(gene, value))
    for stage in (data, search, train, fuse, evaluate):
        stage.run(params)
    best = yaml.safe_load((in_tmp / "search/best.yaml").read_text())["genome"]
    assert best[gene] == value
    report = json.loads((in_tmp / "metrics/evaluate.json").read_text())
    assert report["accuracy"] == report["unfused_accuracy"]
    mlflow.set_tracking_uri(f"sqlite:///{in_tmp / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[f"pinned-{gene}-{value}"], output_format="list")
    assert {r.data.tags.get("automl.stage") for r in runs} >= {"data", "search", "train", "fuse", "evaluate"}
    assert all(r.info.status == "FINISHED" for r in runs if r.data.tags.get("automl.stage"))


def test_refused_criterion_stops_at_once_with_its_reason():
    with pytest.raises(ConfigError, match="'ctc' is refused: CTC aligns a sequence"):
        params_from_dict(tiny("loss", "ctc"))
