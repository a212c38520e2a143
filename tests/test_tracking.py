"""MLflow on its real SQLite store: the experiment opens on its training runs in the UI, every run
that starts ends, headline metrics on the parent, candidate times, datasets, system metrics,
monotonic steps, the champion registry and which execution a stage belongs to."""
from __future__ import annotations

import os
from pathlib import Path

from mlflow import MlflowClient

from pipeline.params import params_from_dict
from pipeline.tracking.run import StageRun


def test_new_and_existing_experiments_are_tagged_for_model_training(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_experiment("older")  # made before the tag existed
    for name in ("older", "newer"):
        with StageRun("data", params_from_dict({"mlflow": {"experiment": name}}), root=tmp_path):
            pass
        assert client.get_experiment_by_name(name).tags["mlflow.experimentKind"] == "custom_model_development"


def _client(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _runs(client, name):
    experiment = client.get_experiment_by_name(name)
    return client.search_runs([experiment.experiment_id], max_results=1000)


def test_each_stage_ends_its_pipeline_run_and_a_later_stage_reopens_it(tmp_path, monkeypatch):
    """Stages of one execution (here: one process, as without DVC) share one `pipeline`
    run; it is RUNNING only while a stage runs, so a skipped last stage leaves nothing RUNNING."""
    client = _client(tmp_path, monkeypatch)
    params = params_from_dict({"mlflow": {"experiment": "ends"}})
    with StageRun("data", params, root=tmp_path) as tracking:
        assert client.get_run(tracking.parent_id).info.status == "RUNNING"
    parent = client.get_run(tracking.parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["automl.stages"] == "data"
    with StageRun("search", params, root=tmp_path) as tracking:
        assert client.get_run(tracking.parent_id).info.status == "RUNNING"
    assert tracking.parent_id == parent.info.run_id
    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["automl.stages"] == "data,search"
    assert {r.info.status for r in _runs(client, "ends")} == {"FINISHED"}


def test_a_failed_stage_fails_its_pipeline_run_for_good(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    params = params_from_dict({"mlflow": {"experiment": "fails"}})
    try:
        with StageRun("train", params, root=tmp_path):
            raise ValueError("broken")
    except ValueError:
        pass
    with StageRun("fuse", params, root=tmp_path) as tracking:
        pass
    statuses = {r.data.tags.get("automl.stage", "pipeline"): r.info.status for r in _runs(client, "fails")}
    assert statuses == {"train": "FAILED", "fuse": "FINISHED", "pipeline": "FAILED"}
    assert client.get_run(tracking.parent_id).data.tags["automl.stages"] == "train,fuse"


def test_headline_metrics_go_to_the_parent_and_steps_never_go_back(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    with StageRun("train", params_from_dict({"mlflow": {"experiment": "steps"}}), root=tmp_path) as tracking:
        tracking.log_curve([{"epoch": e, "val_accuracy": 0.5 + e / 10} for e in (1, 2, 3)])
        tracking.log_metrics({"val_accuracy": 0.8, "params": 1234})  # the summary, after the curve
        tracking.log_headline({"params": 1234})
    steps = [m.step for m in client.get_metric_history(tracking.run_id, "val_accuracy")]
    assert steps == sorted(steps) == [1, 2, 3, 3]
    assert [m.step for m in client.get_metric_history(tracking.run_id, "params")] == [0]
    assert client.get_run(tracking.parent_id).data.metrics == {"params": 1234}


def test_stage_runs_carry_system_metrics(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    with StageRun("data", params_from_dict({"mlflow": {"experiment": "system"}}), root=tmp_path) as tracking:
        pass
    metrics = client.get_run(tracking.run_id).data.metrics
    assert metrics["system/cpu_utilization_percentage"] >= 0 and metrics["system/system_memory_usage_megabytes"] > 0
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    with StageRun("data", params_from_dict({"mlflow": {"experiment": "system"}}), root=tmp_path) as tracking:
        pass
    assert not [k for k in client.get_run(tracking.run_id).data.metrics if k.startswith("system/")]


def test_a_candidate_run_lasts_its_training_time_and_joins_history_by_key(tmp_path, monkeypatch):
    from pipeline.search import Result

    client = _client(tmp_path, monkeypatch)
    trained = Result("k" * 200, {"width": 8}, 1, 0, score=0.9, loss=0.3, seconds=2.5,
                     curve=[{"epoch": 1, "train_loss": 1.0, "val_loss": 0.3, "val_accuracy": 0.9}],
                     started=1_700_000_000.25, finished=1_700_000_002.75)  # as the worker timed it
    with StageRun("search", params_from_dict({"mlflow": {"experiment": "candidates"}}), root=tmp_path) as tracking:
        tracking.log_individual(0, 1, trained.genome, trained)
        tracking.log_individual(1, 1, trained.genome, trained, reused=True)
    fresh, stored = sorted((r for r in _runs(client, "candidates") if r.data.tags.get("automl.kind") == "individual"),
                           key=lambda r: r.data.tags["automl.generation"])
    assert (fresh.info.start_time, fresh.info.end_time) == (1_700_000_000_250, 1_700_000_002_750)
    assert stored.info.end_time == stored.info.start_time  # taken from the store: nothing trained now
    assert fresh.data.tags["automl.genome_key"] == trained.key_hash  # history.csv's genome_key column
    assert stored.data.metrics["seconds"] == 2.5


def test_the_splits_a_stage_reads_are_its_dataset_inputs(tmp_path, monkeypatch, tiny_digits):
    from pipeline.data.settings import DataSettings
    from pipeline.tracking.datasets import split_digest

    client = _client(tmp_path, monkeypatch)
    with StageRun("train", params_from_dict({"mlflow": {"experiment": "inputs"}}), root=tmp_path) as tracking:
        tracking.log_dataset(tiny_digits, DataSettings(), ("train", "validation"))
    inputs = client.get_run(tracking.run_id).inputs.dataset_inputs
    found = {i.tags[0].value: (i.dataset.name, i.dataset.digest, i.dataset.source) for i in inputs}
    assert set(found) == {"train", "validation"}
    assert found["train"][:2] == ("digits", split_digest(tiny_digits.train))
    assert found["validation"][1] == split_digest(tiny_digits.val) != found["train"][1]
    assert "sklearn.datasets.load_digits" in found["train"][2]


def test_the_champion_alias_moves_only_on_improvement_on_the_same_test_split(tmp_path, monkeypatch):
    """Versions are registered only for a new best on a test digest; the served pyfunc
    answers class names and probabilities."""
    import mlflow
    import numpy as np
    import torch

    class Net(torch.nn.Module):  # forward(x), as the project's networks (the export names the input)
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.linear(x.flatten(1))

    client = _client(tmp_path, monkeypatch)
    network = Net().eval()
    example = torch.rand(2, 1, 2, 2)
    names = ["cat", "dog", "eel"]
    outcomes = []
    with StageRun("evaluate", params_from_dict({"mlflow": {"experiment": "registry"}}), root=tmp_path) as tracking:
        for accuracy, digest in ((0.5, "aaaa"), (0.4, "aaaa"), (0.5, "aaaa"), (0.6, "aaaa"), (0.3, "bbbb")):
            decision = tracking.register_if_best("clf", accuracy, "toy", digest, network, names, example)
            champion = client.get_model_version_by_alias("clf", "champion")
            outcomes.append((decision.registered, decision.version, str(champion.version)))
    assert outcomes == [(True, "1", "1"), (False, "1", "1"), (False, "1", "1"), (True, "2", "2"), (True, "3", "3")]
    versions = {str(v.version): v.tags for v in client.search_model_versions("name = 'clf'")}
    assert set(versions) == {"1", "2", "3"}
    assert versions["2"]["test_accuracy"] == "0.6" and versions["2"]["dataset_digest"] == "aaaa"
    assert versions["2"]["run_id"] == tracking.run_id and versions["2"]["pipeline_run_id"] == tracking.parent_id
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model("models:/clf@champion").predict(example.numpy())
    probabilities = network(example).softmax(1).detach().numpy()
    assert list(served["class"]) == [names[i] for i in probabilities.argmax(1)]
    assert np.allclose(served["probability"], probabilities.max(1), atol=1e-6)
    assert set(served["probabilities"][0]) == set(names)


def test_a_stage_belongs_to_the_execution_of_its_dvc_ancestor(tmp_path):
    """A stage run by a `dvc` process through a shell names that process; without one, itself."""
    import subprocess
    import sys

    from pipeline.tracking.execution import _is_dvc, execution_id

    assert _is_dvc(["/venv/bin/python", "/venv/bin/dvc", "repro"]) and _is_dvc(["dvc", "exp", "exec-run"])
    assert _is_dvc(["python", "-m", "dvc", "repro"]) and not _is_dvc(["python", "-m", "pytest"])
    fake = tmp_path / "dvc"
    fake.write_text("import os, subprocess, sys\nprint(os.getpid(), flush=True)\n"
                    "subprocess.run(['sh', '-c', sys.executable + ' -c \"from pipeline.tracking.execution import "
                    "execution_id; print(execution_id())\"'], check=True)\n")
    out = subprocess.run([sys.executable, str(fake)], capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    assert out[1].split(":")[1] == out[0]
    assert execution_id().split(":")[1] == str(os.getpid())
