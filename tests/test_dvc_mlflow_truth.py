"""DVC and MLflow tell what happened, on a temporary copy of the project with real `dvc` and
MLflow on SQLite: byte-identical reruns and a clean `dvc status`, timings kept out of the
metrics, no MLflow run left RUNNING whichever stages DVC ran, the parent run's headline
metrics, candidate runs joinable to history.csv, and a refused `-S` that costs no result.

The tests share one project and run in file order (each later one changes it)."""
from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, TINY, make_project, ran_stages, sh

STABLE = ["models/model.pt", "models/fused.pt", "models/exports/fused.onnx", "models/exports/fused.pt2",
          "metrics/train.json", "metrics/fuse.json", "metrics/evaluate.json", "metrics/evaluate_report.json",
          "metrics/plots/train_curve.csv", "metrics/plots/train_curve.png", "metrics/plots/confusion.csv",
          "metrics/plots/confusion.png", "metrics/plots/errors.png"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stages_of(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict:
    return yaml.safe_load(dvc_yaml.read_text())["stages"]


def out_paths(stage: dict, kind: str) -> set[str]:
    return {next(iter(entry)) if isinstance(entry, dict) else entry for entry in stage.get(kind, [])}


def test_check_lists_every_key_the_stages_list_and_every_stage_depends_on_it():
    stages = stages_of()
    others = {name: stage for name, stage in stages.items() if name != "check"}
    assert set(stages["check"]["params"]) == {key for stage in others.values() for key in stage.get("params", [])}
    assert all("metrics/params.ok" in stage["deps"] for stage in others.values())
    assert out_paths(stages["check"], "outs") == {"metrics/params.ok"}


def test_timings_are_outputs_no_stage_depends_on_and_no_metrics():
    stages = stages_of()
    timings = {path for stage in stages.values() for path in out_paths(stage, "outs") if path.startswith("metrics/timings/")}
    assert timings == {"metrics/timings/search.json", "metrics/timings/train.json", "metrics/timings/fuse.json"}
    assert not timings & {dep for stage in stages.values() for dep in stage.get("deps", [])}
    assert not [p for stage in stages.values() for p in out_paths(stage, "metrics") if p.startswith("metrics/timings")]


@pytest.fixture(scope="module")
def project(tmp_path_factory, dvc_env):
    path = make_project(tmp_path_factory.mktemp("truth"), dvc_env, TINY)
    result = sh(["dvc", "repro"], path, dvc_env)
    (path / "repro.log").write_text(result.stdout + result.stderr)
    return path


def runs_of(project: Path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["e2e"], output_format="list")


@pytest.mark.slow
def test_a_run_prints_no_warning_and_outputs_get_the_umask_mode(project):
    output = (project / "repro.log").read_text()
    assert "Running stage 'evaluate'" in output
    warnings = [line for line in output.splitlines() if "warn" in line.lower()]
    assert not warnings, warnings  # e.g. torch.export's "Expect archive file to be a file ending in .pt2"
    umask = os.umask(0)
    os.umask(umask)
    for name in ("models/model.pt", "models/exports/fused.pt2", "models/exports/fused.onnx", "metrics/evaluate.json"):
        assert (project / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


@pytest.mark.slow
def test_timings_live_in_their_own_files_not_in_the_metrics(project):
    for stage in ("search", "train", "fuse"):
        metrics = json.loads((project / "metrics" / f"{stage}.json").read_text())
        assert "seconds" not in metrics and "latency" not in metrics, stage
    assert json.loads((project / "metrics/timings/search.json").read_text())["seconds"] > 0
    assert json.loads((project / "metrics/timings/train.json").read_text())["seconds"] > 0
    assert json.loads((project / "metrics/timings/fuse.json").read_text())["latency"]["fused_batch1_ms"] > 0
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    assert set(evaluation) == {"accuracy", "macro_f1", "errors", "samples", "unfused_accuracy"}
    report = json.loads((project / "metrics/evaluate_report.json").read_text())
    assert report["accuracy"] == evaluation["accuracy"] and len(report["confusion_matrix"]) == 10


@pytest.mark.slow
def test_the_pipeline_run_carries_the_headline_metrics_and_sorts_by_test_accuracy(project):
    import mlflow

    runs_of(project)
    parents = mlflow.search_runs(experiment_names=["e2e"], filter_string="tags.`automl.pipeline` = 'true'",
                                 order_by=["metrics.test_accuracy DESC"], output_format="list")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    metrics = parents[0].data.metrics
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    search = json.loads((project / "metrics/search.json").read_text())
    train = json.loads((project / "metrics/train.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(evaluation["accuracy"])
    assert metrics["test_macro_f1"] == pytest.approx(evaluation["macro_f1"])
    assert metrics["best_val_accuracy"] == pytest.approx(search["best_val_accuracy"])
    assert metrics["search_trainings"] == search["trained"] and metrics["params"] == train["params"]
    assert metrics["search_seconds"] == pytest.approx(json.loads((project / "metrics/timings/search.json").read_text())["seconds"])
    assert parents[0].data.tags["automl.stages"] == "data,search,train,fuse,evaluate"


@pytest.mark.slow
def test_candidate_runs_join_history_and_stage_runs_hold_datasets_and_system_metrics(project):
    from pipeline.data.prepare import load_prepared
    from pipeline.tracking.datasets import split_digest

    runs = runs_of(project)
    with open(project / "search/history.csv") as handle:
        history = {row["genome_key"]: row for row in csv.DictReader(handle)}
    individuals = [r for r in runs if r.data.tags.get("automl.kind") == "individual"]
    assert {r.data.tags["automl.genome_key"] for r in individuals} == set(history)
    for run in individuals:
        row = history[run.data.tags["automl.genome_key"]]
        assert run.data.metrics["val_accuracy"] == pytest.approx(float(row["val_accuracy"]), abs=1e-6)
        span, trained = run.info.end_time - run.info.start_time, run.data.metrics["seconds"] * 1000
        assert trained - 1 <= span <= 1.5 * trained + 200  # the worker's clock around its training
    stage = {r.data.tags["automl.stage"]: r for r in runs if r.data.tags.get("automl.stage")}
    data = load_prepared(project / "data/prepared")
    contexts = {name: {i.tags[0].value: i.dataset.digest for i in run.inputs.dataset_inputs} for name, run in stage.items()}
    assert contexts["data"] == {"train": split_digest(data.train), "validation": split_digest(data.val),
                                "test": split_digest(data.test)}
    assert set(contexts["search"]) == set(contexts["train"]) == {"train", "validation"}
    assert contexts["evaluate"] == {"test": split_digest(data.test)}
    assert all("system/cpu_utilization_percentage" in run.data.metrics for run in stage.values())
    import mlflow

    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(stage["train"].info.run_id, "val_accuracy")]
    assert steps == sorted(steps) and steps[0] == 1


@pytest.mark.slow
def test_rerunning_a_stage_gives_the_same_bytes_and_a_clean_status(project, dvc_env):
    """Every stage from train on, forced to run again alone: identical models, exports,
    metrics and plots (timings aside), and DVC sees nothing to rerun downstream."""
    before = {name: digest(project / name) for name in STABLE}
    for stage in ("train", "fuse", "evaluate"):
        assert ran_stages(sh(["dvc", "repro", "-f", "-s", stage], project, dvc_env).stdout) == {stage}
        assert json.loads(sh(["dvc", "status", "--json"], project, dvc_env).stdout) == {}, stage
    assert {name: digest(project / name) for name in STABLE} == before


@pytest.mark.slow
def test_no_run_stays_running_when_dvc_skips_the_last_stages(project, dvc_env):
    sh(["dvc", "repro", "-f", "-s", "search"], project, dvc_env)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["search"]["hall_of_fame"] = 2  # reruns the search, leaves best.yaml and what follows as it is
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(sh(["dvc", "repro"], project, dvc_env).stdout) == {"check", "search"}
    runs = runs_of(project)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    parents = sorted((r for r in runs if r.data.tags.get("automl.pipeline") == "true"), key=lambda r: r.info.start_time)
    assert [p.data.tags["automl.stages"] for p in parents[-2:]] == ["search", "search"]
    assert all(p.info.status == "FINISHED" for p in parents)


@pytest.mark.slow
def test_a_refused_set_param_keeps_the_last_good_results(project, dvc_env):
    sh(["git", "add", "-A"], project, dvc_env)
    sh(["git", "commit", "-qm", "good results"], project, dvc_env)
    kept = ["metrics/search.json", "metrics/timings/search.json", "metrics/plots/search_generations.csv",
            "metrics/plots/search_fitness.png", "search/best.yaml", "search/history.csv", "models/model.pt"]
    before = {name: digest(project / name) for name in kept}
    result = sh(["dvc", "exp", "run", "-S", "search.population=abc"], project, dvc_env, check=False)
    assert result.returncode != 0
    assert "automl check: error: params.yaml: search.population:" in result.stdout + result.stderr
    assert {name: digest(project / name) for name in kept if (project / name).exists()} == before
    assert all((project / name).exists() for name in kept)
    sh(["git", "checkout", "params.yaml"], project, dvc_env)
    assert ran_stages(sh(["dvc", "repro"], project, dvc_env).stdout) == {"check"}
    assert json.loads(sh(["dvc", "status", "--json"], project, dvc_env).stdout) == {}
