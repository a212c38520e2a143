"""MLflow on its real SQLite store: the experiment opens on its training runs in the UI."""
from __future__ import annotations

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
