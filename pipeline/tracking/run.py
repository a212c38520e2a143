"""The MLflow run tree of one pipeline execution, and the lifecycle of a stage's run.

One experiment per project; one parent run `pipeline` per execution (one `dvc repro`,
`dvc exp run` or queued experiment: `execution.execution_id`) carrying all of params.yaml,
the git commit, a params hash and its headline metrics; one nested run per stage; under
`search`, one nested run per evaluated individual. DVC runs each stage in its own process
and may skip any of them, so no stage can know it is the last: each stage reopens its
execution's parent (found by the `automl.execution` tag) while it runs and ends it when it
exits, FINISHED, or FAILED/KILLED when the stage failed or was stopped (a later stage does
not turn that back into FINISHED). Every run that starts ends, whichever stages ran; the
parent's tag `automl.stages` lists them. `StageRun` is only this lifecycle; what a stage
logs goes through the `RunLogger` it yields.
"""
from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import UserError, first_line
from pipeline.fileio import project_root
from pipeline.params import Params
from pipeline.tracking.execution import execution_id
from pipeline.tracking.log import RunLogger, flatten, process_tags
from pipeline.tracking.store import (
    check_reachable,
    enable_wal,
    git_commit,
    shielded,
    store_lock,
    tracking_uri,
)
from pipeline.tracking.system import SystemMetrics

PARENT_TAG = "automl.pipeline"
EXECUTION_TAG = "automl.execution"
STAGES_TAG = "automl.stages"  # the stages of the execution that ran, in order
ENDED = ("FAILED", "KILLED")
#: The MLflow 3 UI opens an experiment on the view this tag names: training runs, not GenAI traces.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StageRun:
    """Context manager: a nested MLflow run for one stage under its execution's parent run;
    yields the `RunLogger` of that run."""

    def __init__(self, stage: str, params: Params, root: Path = Path(".")):
        self.stage, self.params, self.root = stage, params, Path(root)
        self.client = None
        self.parent_id = self.run_id = None
        self.parent_status = "RUNNING"  # the parent's status when this stage found it
        self.system = None

    @shielded
    def __enter__(self) -> RunLogger:
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(self.params.mlflow.tracking_uri, self.root)
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        with store_lock(uri):
            enable_wal(uri)
            self.client = MlflowClient(uri)
            self.experiment_id = self._experiment(uri)
        self._fail_abandoned_runs()
        self.parent_id = self._open_parent()
        tags = {"mlflow.parentRunId": self.parent_id, "automl.stage": self.stage, **self._identity_tags(), **process_tags()}
        self.run_id = self.client.create_run(self.experiment_id, run_name=self.stage, tags=tags).info.run_id
        self.system = SystemMetrics(self.run_id, uri)
        self.system.start()
        return RunLogger(self.client, self.experiment_id, self.run_id, self.parent_id, uri)

    @shielded
    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            status = "KILLED"
        else:
            status = "FAILED"
        if self.system is not None:
            self.system.stop()
        if exc_type is not None and exc is not None:
            self.client.set_tag(self.run_id, "automl.error", str(exc)[:500] or exc_type.__name__)
        self.client.set_terminated(self.run_id, status)
        parent = self.client.get_run(self.parent_id)
        stages = [name for name in parent.data.tags.get(STAGES_TAG, "").split(",") if name]
        if self.stage not in stages:  # not twice when a locked store made this method run again
            self.client.set_tag(self.parent_id, STAGES_TAG, ",".join(stages + [self.stage]))
        self.client.set_terminated(self.parent_id, self.parent_status if self.parent_status in ENDED else status)
        return False

    def _experiment(self, uri: str) -> str:
        """The project's experiment, created on first use (under the store lock) and tagged
        so that the UI opens on its training runs."""
        name = self.params.mlflow.experiment
        try:
            experiment = self.client.get_experiment_by_name(name)
        except Exception as err:  # the server is down, the URI is wrong, the DB is broken
            raise UserError(f"MLflow tracking store {uri} cannot be used ({first_line(err)})") from None
        if experiment is not None:
            for key, value in EXPERIMENT_KIND.items():
                if experiment.tags.get(key) != value:
                    self.client.set_experiment_tag(experiment.experiment_id, key, value)
            return experiment.experiment_id
        location = (project_root(self.root) / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
        return self.client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)

    @shielded
    def _fail_abandoned_runs(self) -> None:
        """Stage runs left RUNNING by a process that no longer exists (SIGKILL, power loss)
        on this host are marked FAILED, with their pipeline run, so none stays RUNNING forever."""
        host = process_tags()["automl.host"]
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
    def _open_parent(self) -> str:
        """This execution's `pipeline` run, started by its first stage and reopened
        (RUNNING again) by each later one."""
        execution = execution_id()
        query = f"tags.`{PARENT_TAG}` = 'true' and tags.`{EXECUTION_TAG}` = '{execution}'"
        found = self.client.search_runs([self.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=1)
        if found:
            self.parent_status = found[0].info.status
            self.client.update_run(found[0].info.run_id, status="RUNNING")
            return found[0].info.run_id
        tags = {PARENT_TAG: "true", EXECUTION_TAG: execution, **self._identity_tags()}
        run = self.client.create_run(self.experiment_id, run_name="pipeline", tags=tags)
        RunLogger(self.client, self.experiment_id, run.info.run_id).log_params(flatten(self.params.raw))
        return run.info.run_id


def search_artifact(params: Params, run_id: str, dest: Path, root: Path = Path(".")) -> Path:
    """history.csv (or hall_of_fame.json) of an earlier search, given the MLflow id of its
    `search` stage run or of the `pipeline` run above it, downloaded into `dest`."""
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(params.mlflow.tracking_uri, root)
    check_reachable(uri)
    client = MlflowClient(uri)
    try:
        run = client.get_run(run_id)
    except Exception:  # MLflow raises its own exception types for unknown ids
        raise UserError(f"search.warm_start: no MLflow run '{run_id}' in {uri}") from None
    if run.data.tags.get("automl.stage") == "search":
        candidates = [run]
    else:  # a pipeline run: its latest finished search (one execution may hold several)
        query = (f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`automl.stage` = 'search'"
                 " and attributes.status = 'FINISHED'")
        candidates = client.search_runs([run.info.experiment_id], query, order_by=["attributes.start_time DESC"])
        if not candidates:
            raise UserError(f"search.warm_start: MLflow run '{run_id}' is neither a search run nor a pipeline run with a finished one")
    for run in candidates:
        names = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
        for name in ("history.csv", "hall_of_fame.json"):
            if name in names:
                return Path(client.download_artifacts(run.info.run_id, name, str(dest)))
    raise UserError(f"search.warm_start: MLflow run '{run.info.run_id}' has no history.csv or hall_of_fame.json")
