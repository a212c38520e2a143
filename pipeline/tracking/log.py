"""Everything a stage logs to its MLflow run: params, metrics, curves, tags, artifacts,
datasets, one nested run per evaluated individual of the search, models, and the headline
metrics it adds to its execution's `pipeline` run.

Writes go through `shielded` (no torn SQLite transaction on Ctrl-C, retries while the
store is locked) and are batched, since each MLflow call is a database transaction. Steps
never go back: a metric logged without a step (a summary after a per-epoch curve) takes
the last step that metric has in the run.
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
    """Logging into one run (a stage's), nested runs under it, and headline metrics into
    the parent run above it (`parent_id`, the execution's `pipeline` run)."""

    def __init__(self, client, experiment_id: str, run_id: str, parent_id: str | None = None, uri: str = ""):
        self.client, self.experiment_id, self.run_id, self.parent_id = client, experiment_id, run_id, parent_id
        self.uri = uri
        self._steps: dict[tuple[str, str], int] = {}  # (run id, metric) -> last step logged

    def _step(self, run_id: str, key: str, step: int | None) -> int:
        last = self._steps.get((run_id, key), 0)
        step = last if step is None else step
        self._steps[(run_id, key)] = max(last, step)
        return step

    @shielded
    def log_params(self, values: Mapping[str, Any], run_id: str | None = None) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in values.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id or self.run_id, params=items[start : start + 100])

    @shielded
    def log_metrics(self, values: Mapping[str, float], step: int | None = None, run_id: str | None = None) -> None:
        """Numeric values as metrics at `step` (None: each metric's last step in this run, else 0)."""
        from mlflow.entities import Metric

        run_id = run_id or self.run_id
        now = _now()
        metrics = [Metric(k, float(v), now, self._step(run_id, k, step)) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if metrics:
            self.client.log_batch(run_id, metrics=metrics)

    def log_headline(self, values: Mapping[str, float]) -> None:
        """Metrics of the whole execution on its `pipeline` run (test accuracy, best
        validation accuracy, parameters, ...), so that executions sort by them in the UI."""
        if self.parent_id:
            self.log_metrics(values, run_id=self.parent_id)

    @shielded
    def log_dataset(self, data, settings, contexts=("train", "validation", "test")) -> None:
        """The splits this stage reads as dataset inputs of its run (see `datasets`)."""
        from pipeline.tracking.datasets import dataset_inputs

        self.client.log_inputs(self.run_id, datasets=dataset_inputs(data, settings, contexts))

    @shielded
    def log_curve(self, records: list[Mapping[str, float]], step_key: str = "epoch", run_id: str | None = None) -> None:
        from mlflow.entities import Metric

        run_id = run_id or self.run_id
        now = _now()
        metrics = [Metric(k, float(v), now, self._step(run_id, k, int(record[step_key]))) for record in records
                   for k, v in record.items() if k != step_key]
        for start in range(0, len(metrics), 900):
            self.client.log_batch(run_id, metrics=metrics[start : start + 900])

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
        `automl.genome_key` as in history.csv, and `automl.reused` when the result came
        from the candidate store. The run spans the candidate's training as its worker
        timed it (`Result.started`, `finished`); a stored result trained nothing now and
        lasts no time."""
        from mlflow.entities import Metric, Param, RunTag

        end = _now()
        if not reused and result.finished:
            start, end = int(result.started * 1000), int(result.finished * 1000)
        else:
            start = end
        tags = {"mlflow.parentRunId": self.run_id, "automl.generation": str(generation),
                "automl.genome_key": result.key_hash, **process_tags()}
        if result.failure:
            tags.update({"failure_reason": result.failure, "failure_detail": result.detail[:500]})
        tags["automl.rung"] = str(rung)
        tags["automl.reused"] = str(reused).lower()
        run = self.client.create_run(self.experiment_id, start_time=start, run_name=f"gen{generation}-{index}",
                                     tags=tags)
        metrics = [
            Metric("val_accuracy", result.score, end, 0),
            Metric("params", result.metrics.get("params", 0), end, 0),
            Metric("flops", result.metrics.get("flops", 0), end, 0),
            Metric("seconds", result.seconds, end, 0),
            Metric("cost", result.spent, end, 0),
        ]
        if not result.failure:
            metrics.append(Metric("val_loss", result.loss, end, 0))
        for record in result.curve:
            for key in ("train_loss", "val_loss", "val_accuracy"):
                metrics.append(Metric(f"curve.{key}", record[key], end, record["epoch"]))
        params = [Param(k, str(v)) for k, v in genome.items()] + [Param("epochs", str(result.budget))]
        self.client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=[RunTag("automl.kind", "individual")])
        self.client.set_terminated(run.info.run_id, "FAILED" if result.failure else "FINISHED", end_time=end)

    def use_experiment(self) -> None:
        """MLflow 3 files a logged model under the fluent API's current experiment, not its
        run's; point it at this run's, and keep MLflow's INFO lines and download bars
        about the model's input example off a stage's output."""
        import logging

        import mlflow

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        logging.getLogger("mlflow.pyfunc").setLevel(logging.WARNING)
        mlflow.set_experiment(experiment_id=self.experiment_id)

    @shielded
    def log_model(self, model, name: str, example) -> None:
        """Log a torch model as an MLflow model of this run (the run stays RUNNING: no
        fluent `start_run`, whose end would mark it FINISHED before the stage is done)."""
        import mlflow.pytorch
        from mlflow.models import Model

        self.use_experiment()
        Model.log(artifact_path=None, name=name, flavor=mlflow.pytorch, run_id=self.run_id, pytorch_model=model,
                  input_example=example, pip_requirements=["torch", "torchvision"],
                  # torch.export's format: loading it runs no pickled code (unlike the default).
                  serialization_format="pt2")

    def register_if_best(self, name: str, accuracy: float, dataset: str, digest: str, network, class_names, example):
        """Register the served classifier built from `network` if it is the best on its
        test split so far; returns the `registry.Decision`."""
        from pipeline.tracking.registry import register_if_best

        return register_if_best(self, self.uri, name, accuracy, dataset, digest, network, class_names, example)
