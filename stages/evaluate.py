"""`evaluate` stage: the fused model (and, to show they agree, the unfused one) on the test split."""
import torch

from pipeline.artifacts import load_model
from pipeline.data import load_prepared
from pipeline.evaluation import classification_report
from pipeline.fileio import write_csv, write_json
from pipeline.params import Params
from pipeline.runtime import configure
from pipeline.tracking import StageRun
from pipeline.training import predict_logits
from stages.outputs import FUSED, METRICS, MODEL, PLOTS, PREPARED


def run(params: Params) -> None:
    device = torch.device("cpu")
    configure(device, params.runtime.threads)
    with StageRun("evaluate", params) as tracking:
        fused, info = load_model(FUSED)
        unfused, _ = load_model(MODEL)
        data = load_prepared(PREPARED)
        labels = data.test.labels.tolist()
        predictions = predict_logits(fused, data.test.images, device).argmax(1).tolist()
        unfused_predictions = predict_logits(unfused, data.test.images, device).argmax(1).tolist()
        report = classification_report(labels, predictions, info.class_names)
        report["unfused_accuracy"] = classification_report(labels, unfused_predictions, info.class_names)["accuracy"]
        write_json(METRICS / "evaluate.json", report)
        write_csv(PLOTS / "confusion.csv", ["actual", "predicted"],
                  [[info.class_names[a], info.class_names[p]] for a, p in zip(labels, predictions)])
        tracking.log_metrics({"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"],
                              "test_errors": report["errors"], "unfused_test_accuracy": report["unfused_accuracy"]})
        tracking.log_artifact(METRICS / "evaluate.json")
        print(f"evaluate: test accuracy {report['accuracy']:.4f} ({report['errors']} errors of {report['samples']}), "
              f"macro-F1 {report['macro_f1']:.4f}; unfused {report['unfused_accuracy']:.4f}")
