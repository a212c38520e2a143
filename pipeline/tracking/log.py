"""Everything a stage logs to its MLflow run: params, metrics, curves, tags, artifacts,
one nested run per evaluated individual of the search, and models.

Writes go through `shielded` (no torn SQLite transaction on Ctrl-C, retries while the
store is locked) and are batched, since each MLflow call is a database transaction.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Mapping

from pipeline.tracking.store import shielded


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become JSON text (MLflow params are strings)."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    value = json.dumps(data) if isinstance(data, (list, dict)) else data
    return {prefix.rstrip("."): value}


def _now() -> int:
    return int(time.time() * 1000)


def process_tags() -> dict[str, str]:
    """Who wrote a run: a later stage marks runs of dead processes on this host FAILED."""
    return {"automl.host": socket.gethostname(), "automl.pid": str(os.getpid())}


class RunLogger:
    """Logging into one run (a stage's), and nested runs under it."""

    def __init__(self, client, experiment_id: str, run_id: str):
        self.client, self.experiment_id, self.run_id = client, experiment_id, run_id

    @shielded
    def log_params(self, values: Mapping[str, Any], run_id: str | None = None) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in values.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id or self.run_id, params=items[start : start + 100])

    @shielded
    def log_metrics(self, values: Mapping[str, float], step: int = 0, run_id: str | None = None) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(k, float(v), _now(), step) for k, v in values.items() if isinstance(v, (int, float))]
        self.client.log_batch(run_id or self.run_id, metrics=metrics)

    @shielded
    def log_curve(self, records: list[Mapping[str, float]], step_key: str = "epoch", run_id: str | None = None) -> None:
        from mlflow.entities import Metric

        now = _now()
        metrics = [Metric(k, float(v), now, int(record[step_key])) for record in records
                   for k, v in record.items() if k != step_key]
        for start in range(0, len(metrics), 900):
            self.client.log_batch(run_id or self.run_id, metrics=metrics[start : start + 900])

    @shielded
    def set_tags(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self.client.set_tag(self.run_id, key, value)

    @shielded
    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    @shielded
    def log_individual(self, generation: int, index: int, genome: Mapping, result, rung: int = 0,
                       reused: bool = False) -> None:
        """One nested run under this stage for an evaluated individual of the search:
        its genome as params, score and cost as metrics, its curve, its failure as tags,
        and `automl.reused` when the result came from the candidate store."""
        from mlflow.entities import Metric, Param, RunTag

        tags = {"mlflow.parentRunId": self.run_id, "automl.generation": str(generation),
                "automl.genome_key": result.key[:64], **process_tags()}
        if result.failure:
            tags.update({"failure_reason": result.failure, "failure_detail": result.detail[:500]})
        tags["automl.rung"] = str(rung)
        tags["automl.reused"] = str(reused).lower()
        run = self.client.create_run(self.experiment_id, run_name=f"gen{generation}-{index}", tags=tags)
        now = _now()
        metrics = [
            Metric("val_accuracy", result.score, now, 0),
            Metric("params", result.metrics.get("params", 0), now, 0),
            Metric("flops", result.metrics.get("flops", 0), now, 0),
            Metric("seconds", result.seconds, now, 0),
            Metric("cost", result.spent, now, 0),
        ]
        if not result.failure:
            metrics.append(Metric("val_loss", result.loss, now, 0))
        for record in result.curve:
            for key in ("train_loss", "val_loss", "val_accuracy"):
                metrics.append(Metric(f"curve.{key}", record[key], now, record["epoch"]))
        params = [Param(k, str(v)) for k, v in genome.items()] + [Param("epochs", str(result.budget))]
        self.client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=[RunTag("automl.kind", "individual")])
        self.client.set_terminated(run.info.run_id, "FAILED" if result.failure else "FINISHED")

    @shielded
    def log_model(self, model, name: str, example, registered_name: str | None = None) -> None:
        """Log a torch model as an MLflow model (and register it when a name is given)."""
        import mlflow
        import mlflow.pytorch

        with mlflow.start_run(run_id=self.run_id):
            mlflow.pytorch.log_model(
                model,
                name=name,
                input_example=example,
                registered_model_name=registered_name,
                pip_requirements=["torch", "torchvision"],
                # torch.export's format: loading it runs no pickled code (unlike the default).
                serialization_format="pt2",
            )
