"""`evaluate`: the fused model (and, to show they agree, the unfused one) on the test split,
or with --model/--data any exported model on any dataset or image folder."""
from pathlib import Path

import torch

from pipeline.data.prepare import load_prepared, prepare
from pipeline.data.settings import DataSettings
from pipeline.data.sources import DATASETS, fetch_folder, load_image_folder
from pipeline.deploy.artifacts import load_model
from pipeline.deploy.evaluation import classification_report
from pipeline.deploy.predict import load_predictor
from pipeline.errors import UserError
from pipeline.fileio import write_csv, write_json
from pipeline.nn.inference import to_inputs
from pipeline.params import Params
from pipeline.runtime import configure
from pipeline.tracking.datasets import dataset_name, split_digest
from pipeline.tracking.plots import confusion_plot, error_grid_plot
from pipeline.tracking.run import StageRun
from stages.outputs import DOWNLOADS, EVALUATE_REPORT, FUSED, METRICS, MODEL, PLOTS, PREPARED


def summary_line(report: dict) -> str:
    return (f"test accuracy {report['accuracy']:.4f} ({report['errors']} errors of {report['samples']}), "
            f"macro-F1 {report['macro_f1']:.4f}")


HEADLINE = ("accuracy", "macro_f1", "errors", "samples", "unfused_accuracy")


def run(params: Params) -> None:
    configure(torch.device("cpu"), params.runtime.threads)
    with StageRun("evaluate", params) as tracking:
        fused, unfused = load_predictor(FUSED), load_predictor(MODEL)
        data = load_prepared(PREPARED)
        tracking.log_dataset(data, params.data, ("test",))
        labels = data.test.labels.tolist()
        logits = fused.logits(data.test.images)
        predictions = logits.argmax(1).tolist()
        report = classification_report(labels, predictions, fused.class_names)
        report["unfused_accuracy"] = classification_report(labels, unfused.logits(data.test.images).argmax(1).tolist(),
                                                           fused.class_names)["accuracy"]
        # The DVC metrics: a few named numbers; per class and the matrix go to the report.
        write_json(METRICS / "evaluate.json", {key: report[key] for key in HEADLINE})
        write_json(EVALUATE_REPORT, report)
        write_csv(PLOTS / "confusion.csv", ["actual", "predicted"],
                  [[fused.class_names[a], fused.class_names[p]] for a, p in zip(labels, predictions)])
        pictures = [
            confusion_plot(report["confusion_matrix"], fused.class_names, PLOTS / "confusion.png"),
            error_grid_plot(data.test.images, labels, logits.softmax(1), fused.class_names, PLOTS / "errors.png"),
        ]
        tracking.log_metrics({"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"],
                              "test_errors": report["errors"], "unfused_test_accuracy": report["unfused_accuracy"]})
        tracking.log_headline({"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"]})
        tracking.log_artifact(EVALUATE_REPORT)
        for picture in pictures:
            tracking.log_artifact(picture, "plots")
        print(f"evaluate: {summary_line(report)}; unfused {report['unfused_accuracy']:.4f}")
        network, _ = load_model(FUSED)
        name = params.mlflow.registered_model
        decision = tracking.register_if_best(name, report["accuracy"], dataset_name(params.data), split_digest(data.test),
                                             network, fused.class_names, to_inputs(data.test.images[:2]))
        print(f"evaluate: {decision.describe(name, report['accuracy'])}")


def load_any_data(source: str, sha256: str, class_names: list[str], image_size: int,
                  unreadable: list[tuple[str, str]] | None = None):
    """(images, labels as indices into `class_names`) from a dataset name or image folder;
    images that cannot be decoded are skipped and added to `unreadable` when it is given."""
    if source in DATASETS and source != "imagefolder":
        prepared = prepare(DataSettings(dataset=source), seed=0, downloads=DOWNLOADS)
        images, labels, names = prepared.test.images, prepared.test.labels.tolist(), prepared.class_names
    else:
        root = fetch_folder(source, sha256, DOWNLOADS, option="--data", checksum="--sha256")
        arrays, label_array, names = load_image_folder(root, image_size, option="--data", unreadable=unreadable)
        images, labels = torch.from_numpy(arrays), label_array.tolist()
    unknown = [name for name in names if name not in class_names]
    if unknown:
        shown = ", ".join(class_names[:10]) + (", ..." if len(class_names) > 10 else "")
        raise UserError(f"--data: {source}: classes {', '.join(unknown[:5])} are not among the model's classes ({shown})")
    remap = [class_names.index(name) for name in names]
    return images, [remap[label] for label in labels]


def evaluate_any(model_path: str, source: str, sha256: str, out: str | None) -> None:
    predictor = load_predictor(Path(model_path))
    unreadable: list[tuple[str, str]] = []
    images, labels = load_any_data(source, sha256, predictor.class_names, predictor.input_shape[-1], unreadable)
    logits = predictor.logits(images)
    report = classification_report(labels, logits.argmax(1).tolist(), predictor.class_names)
    report["unreadable"] = [{"file": name, "error": error} for name, error in unreadable]
    if out:
        write_json(Path(out), report)
        error_grid_plot(images, labels, logits.softmax(1), predictor.class_names, Path(out).with_suffix(".errors.png"))
    print(f"evaluate: {model_path} on {source}: {summary_line(report)}")
    if unreadable:
        listed = "; ".join(f"{name} ({error})" for name, error in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        where = f" (all listed in {out})" if out else ""
        print(f"evaluate: skipped {len(unreadable)} unreadable images{where}: {listed}{more}")
