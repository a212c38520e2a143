"""The model registry holds champions only: a fused model becomes a new version of
`mlflow.registered_model` only when its test accuracy beats every version scored on the
same test split (same digest of the test tensors), and the alias `champion` then moves to
it. So `models:/automl-classifier@champion` is the newest model that was the best on its
test data when it was evaluated; a version of another dataset never counts against it.

Each version carries the tags `test_accuracy`, `dataset`, `dataset_digest` (of the test
split), `run_id` (the evaluate run) and `pipeline_run_id`; the logged model is the pyfunc
of `served_model.py` (class names and probabilities out). Deciding and registering happen
under the store's lock, so two experiments finishing at once cannot both win.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.tracking.store import shielded, store_lock

ALIAS = "champion"
SERVED_MODEL = Path(__file__).with_name("served_model.py")


@dataclass(frozen=True)
class Decision:
    registered: bool
    version: str | None  # the new version, or the best one on this test split (None: no version yet)
    best_before: float | None  # the best test accuracy on this test split before this run

    def describe(self, name: str, accuracy: float) -> str:
        if self.registered:
            before = f"; the best before was {self.best_before:.4f}" if self.best_before is not None else ""
            return (f"registered {name} version {self.version} as @{ALIAS}: test accuracy {accuracy:.4f}, the best "
                    f"on this test split so far{before}")
        return (f"not registered: test accuracy {accuracy:.4f} does not beat {name} version {self.version} "
                f"({self.best_before:.4f}) on this test split")


def best_version(client, name: str, digest: str):
    """(version, test accuracy) of the best version scored on test digest `digest`, or None."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    scored = [(float(v.tags["test_accuracy"]), -int(v.version), v) for v in versions
              if v.tags.get("dataset_digest") == digest and "test_accuracy" in v.tags]
    if not scored:
        return None
    accuracy, _, version = max(scored)
    return version, accuracy


def _log_classifier(logger, fused, class_names: list[str], example):
    """Log the served pyfunc (the fused network as a .pt2, its class names) in the
    logger's run; returns MLflow's `ModelInfo` (model URI and id)."""
    import mlflow.pyfunc
    import numpy as np
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, DataType, Schema, TensorSpec
    from mlflow.types.schema import Map

    from pipeline.deploy.export import export_pt2

    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder) / "fused.pt2"
        export_pt2(fused, example, program, {"class_names": list(class_names), "input_shape": list(example.shape[1:])})
        classes = Path(folder) / "classes.json"
        classes.write_text(json.dumps(list(class_names)))
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *example.shape[1:]))]),
            outputs=Schema([ColSpec(DataType.string, "class"), ColSpec(DataType.double, "probability"),
                            ColSpec(Map(DataType.double), "probabilities")]),
        )
        logger.use_experiment()
        info = Model.log(artifact_path=None, name="classifier", flavor=mlflow.pyfunc, run_id=logger.run_id,
                         python_model=str(SERVED_MODEL), artifacts={"program": str(program), "classes": str(classes)},
                         signature=signature, input_example=example.numpy(),
                         pip_requirements=["mlflow", "torch", "numpy", "pandas"])
    return info


@shielded
def _register(client, name: str, model, tags: dict[str, str], description: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # it exists
    # A tracking server wants the logged model's id with its `models:/` URI.
    version = client.create_model_version(name, model.model_uri, run_id=tags["run_id"], tags=tags,
                                          description=description, model_id=model.model_id)
    client.set_registered_model_alias(name, ALIAS, version.version)
    return str(version.version)


def register_if_best(logger, uri: str, name: str, accuracy: float, dataset: str, digest: str, fused, class_names,
                     example) -> Decision:
    """Register `fused` (an eval-mode network taking [0, 1] images like `example`) as a new
    version of `name` with alias `champion` if its test accuracy beats every version on
    test digest `digest` (see the module docstring)."""
    with store_lock(uri):
        best = shielded(best_version)(logger.client, name, digest)
        if best is not None and accuracy <= best[1]:
            return Decision(False, str(best[0].version), best[1])
        model = _log_classifier(logger, fused, class_names, example)
        tags = {"test_accuracy": repr(float(accuracy)), "dataset": dataset, "dataset_digest": digest,
                "run_id": logger.run_id, "pipeline_run_id": logger.parent_id or ""}
        version = _register(logger.client, name, model, tags, f"test accuracy {accuracy:.4f} on {dataset} "
                                                                  f"(test split {digest})")
        return Decision(True, version, best[1] if best else None)
