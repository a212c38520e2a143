"""With one choice pinned, the whole pipeline (all five stages, MLflow included) runs on
digits with a tiny budget; a refused criterion stops at once with its reason."""
from __future__ import annotations

import json

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


@pytest.mark.slow
def test_failed_candidates_are_recorded_in_history_metrics_and_mlflow(in_tmp):
    import csv

    from stages import data, search

    raw = tiny("width", 8)
    raw["space"]["width"] = {"low": 8, "high": 64}
    raw["search"]["max_params"] = 20_000  # wide candidates are refused before training
    params = params_from_dict(raw)
    data.run(params)
    search.run(params)
    with open(in_tmp / "search/history.csv") as handle:
        rows = list(csv.DictReader(handle))
    failed = [r for r in rows if r["failure"]]
    assert failed and all(r["failure"] == "too_large" and "max_params" in r["detail"] for r in failed)
    assert any(not r["failure"] for r in rows)
    summary = json.loads((in_tmp / "metrics/search.json").read_text())
    assert summary["failures_by_reason"] == {"too_large": len(failed)}
    mlflow.set_tracking_uri(f"sqlite:///{in_tmp / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["pinned-width-8"], output_format="list")
    tagged = [r for r in runs if r.data.tags.get("failure_reason") == "too_large"]
    assert len(tagged) == len(failed) and all(r.info.status == "FAILED" for r in tagged)
