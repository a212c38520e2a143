"""Every MLflow call of the pipeline, and nothing else.

Layout (see DESIGN.md): one experiment per project; one parent run per pipeline execution
carrying all of params.yaml, the git commit and a params hash; one nested run per stage;
under `search`, one nested run per evaluated individual. DVC runs each stage in its own
process, so a stage finds its execution's parent run by tags (params hash, commit, DVC
experiment name) among runs still RUNNING; `evaluate`, the last stage, closes it, and a stage
that fails or is interrupted closes it as FAILED or KILLED.

The default store is `sqlite:///mlflow.db` at the project root with artifacts in
`mlartifacts/`; `mlflow.tracking_uri` in params.yaml, or `MLFLOW_TRACKING_URI` (which wins),
points elsewhere, such as a team server.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Mapping

from pipeline.errors import UserError
from pipeline.interrupts import critical
from pipeline.params import Params

LAST_STAGE = "evaluate"
PARENT_TAG = "automl.pipeline"


def project_root(root: Path) -> Path:
    """Where the default store lives. `dvc exp run --queue` runs stages in a temporary copy
    of the repo and sets DVC_ROOT to the real one, so every experiment logs to one store."""
    return Path(os.environ.get("DVC_ROOT") or root)


def tracking_uri(params: Params, root: Path) -> str:
    default = f"sqlite:///{(project_root(root) / 'mlflow.db').resolve()}"
    return os.environ.get("MLFLOW_TRACKING_URI") or params.mlflow.tracking_uri or default


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become JSON text (MLflow params are strings)."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    value = json.dumps(data) if isinstance(data, (list, dict)) else data
    return {prefix.rstrip("."): value}


def shielded(method):
    """Run an MLflow write inside `interrupts.critical()` and retry it while SQLite reports
    'database is locked' (another experiment writing the same store), for up to a minute."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        delay = 0.05
        deadline = time.monotonic() + 60
        while True:
            try:
                with critical():
                    return method(*args, **kwargs)
            except Exception as err:
                if "database is locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    return wrapper


@contextlib.contextmanager
def store_lock(uri: str):
    """An exclusive lock beside a SQLite store (nothing to lock for a server)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    lock_path = Path(uri[len("sqlite:///"):] + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def enable_wal(uri: str) -> None:
    """Write-ahead logging lets readers (the UI, a second experiment) work while a stage
    writes; the setting is stored in the database file, so this runs once per store."""
    if not uri.startswith("sqlite:///"):
        return
    import sqlite3

    path = uri[len("sqlite:///"):]
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as connection:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail at the start of a stage, in one line, when a tracking server does not answer;
    MLflow's own client would retry with backoff for minutes, after the work was done."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            response.read(64)
    except urllib.error.HTTPError:
        return  # it answered; MLflow will report anything more specific
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"MLflow tracking server {uri} cannot be reached ({reason}); start it or unset MLFLOW_TRACKING_URI") from None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StageRun:
    """Context manager: a nested MLflow run for one stage under its execution's parent run."""

    def __init__(self, stage: str, params: Params, root: Path = Path(".")):
        self.stage, self.params, self.root = stage, params, Path(root)
        self.client = None
        self.parent_id = self.run_id = None

    # -- lifecycle -------------------------------------------------------------------------
    @shielded
    def __enter__(self) -> "StageRun":
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(self.params, self.root)
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        # Two experiments starting at once would both create (migrate) a new SQLite store
        # and both create the experiment; a file lock makes the first one do it alone.
        with store_lock(uri):
            enable_wal(uri)
            self.client = MlflowClient(uri)
            try:
                experiment = self.client.get_experiment_by_name(self.params.mlflow.experiment)
            except Exception as err:  # the server is down, the URI is wrong, the DB is broken
                raise UserError(f"MLflow tracking store {uri} cannot be used ({str(err).splitlines()[0][:200]})") from None
            if experiment is None:
                location = (project_root(self.root) / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
                self.experiment_id = self.client.create_experiment(self.params.mlflow.experiment, artifact_location=location)
            else:
                self.experiment_id = experiment.experiment_id
        self._fail_abandoned_runs()
        self.parent_id = self._find_or_start_parent()
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.stage,
            tags={
                "mlflow.parentRunId": self.parent_id, "automl.stage": self.stage, **self._identity_tags(),
                "automl.host": socket.gethostname(), "automl.pid": str(os.getpid()),
            },
        )
        self.run_id = run.info.run_id
        return self

    @shielded
    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            status = "KILLED"
        else:
            status = "FAILED"
        if exc_type is not None and exc is not None:
            self.client.set_tag(self.run_id, "automl.error", str(exc)[:500] or exc_type.__name__)
        self.client.set_terminated(self.run_id, status)
        if status != "FINISHED" or self.stage == LAST_STAGE:
            self.client.set_terminated(self.parent_id, status)
        return False

    @shielded
    def _fail_abandoned_runs(self) -> None:
        """Stage runs left RUNNING by a process that no longer exists (SIGKILL, power loss)
        on this host are marked FAILED, with their pipeline run, so none stays RUNNING forever."""
        host = socket.gethostname()
        stale = self.client.search_runs(
            [self.experiment_id], f"attributes.status = 'RUNNING' and tags.`automl.host` = '{host}'", max_results=200
        )
        for run in stale:
            pid = run.data.tags.get("automl.pid", "")
            if pid.isdigit() and not _process_alive(int(pid)):
                self.client.set_tag(run.info.run_id, "automl.error", f"abandoned: process {pid} is gone")
                self.client.set_terminated(run.info.run_id, "FAILED")
                parent = run.data.tags.get("mlflow.parentRunId")
                if parent and self.client.get_run(parent).info.status == "RUNNING":
                    self.client.set_terminated(parent, "FAILED")

    def _identity_tags(self) -> dict[str, str]:
        return {
            "automl.params_hash": self.params.section_hash(),
            "mlflow.source.git.commit": git_commit(self.root),
            "automl.dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
        }

    @shielded
    def _find_or_start_parent(self) -> str:
        tags = self._identity_tags()
        query = " and ".join(
            [f"tags.`{PARENT_TAG}` = 'true'", "attributes.status = 'RUNNING'"]
            + [f"tags.`{key}` = '{value}'" for key, value in tags.items() if value]
        )
        found = self.client.search_runs([self.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=1)
        if found:
            return found[0].info.run_id
        run = self.client.create_run(self.experiment_id, run_name="pipeline", tags={PARENT_TAG: "true", **tags})
        self._log_params(run.info.run_id, flatten(self.params.raw))
        return run.info.run_id

    # -- logging ---------------------------------------------------------------------------
    @shielded
    def _log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in values.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_params(self, values: Mapping[str, Any]) -> None:
        self._log_params(self.run_id, values)

    @shielded
    def log_metrics(self, values: Mapping[str, float], step: int = 0, run_id: str | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if isinstance(v, (int, float))]
        self.client.log_batch(run_id or self.run_id, metrics=metrics)

    @shielded
    def log_curve(self, records: list[Mapping[str, float]], step_key: str = "epoch", run_id: str | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, int(record[step_key]))
            for record in records
            for k, v in record.items()
            if k != step_key
        ]
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
    def log_individual(self, generation: int, index: int, genome: Mapping, result, rung: int = 0) -> None:
        """One nested run under this stage for an evaluated individual of the search."""
        from mlflow.entities import Metric, Param, RunTag

        tags = {
            "mlflow.parentRunId": self.run_id, "automl.generation": str(generation), "automl.genome_key": result.key[:64],
            "automl.host": socket.gethostname(), "automl.pid": str(os.getpid()),
        }
        if result.failure:
            tags.update({"failure_reason": result.failure, "failure_detail": result.detail[:500]})
        tags["automl.rung"] = str(rung)
        run = self.client.create_run(self.experiment_id, run_name=f"gen{generation}-{index}", tags=tags)
        now = int(time.time() * 1000)
        metrics = [
            Metric("val_accuracy", result.val_accuracy, now, 0),
            Metric("params", result.params, now, 0),
            Metric("flops", result.flops, now, 0),
            Metric("seconds", result.seconds, now, 0),
        ]
        if not result.failure:
            metrics.append(Metric("val_loss", result.val_loss, now, 0))
        for record in result.curve:
            for key in ("train_loss", "val_loss", "val_accuracy"):
                metrics.append(Metric(f"curve.{key}", record[key], now, record["epoch"]))
        params = [Param(k, str(v)) for k, v in genome.items()] + [Param("epochs", str(result.epochs))]
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
