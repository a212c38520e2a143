"""Classification metrics from predictions, with scikit-learn doing the arithmetic."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_report(labels: Sequence[int], predictions: Sequence[int], class_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/support and the confusion matrix."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = list(range(len(class_names)))
    precision, recall, _, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "errors": int((labels != predictions).sum()),
        "samples": int(len(labels)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "support": int(s)}
            for name, p, r, s in zip(class_names, precision, recall, support)
        },
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }
