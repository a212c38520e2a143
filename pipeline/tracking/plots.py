"""PNG figures for MLflow and `dvc plots`: fitness per generation, training curves,
confusion matrix, and a grid of the most confidently wrong images.

matplotlib runs headless (Agg); every function writes one PNG atomically and returns its path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pipeline.fileio import atomic_write


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _figure()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return Path(path)


def fitness_plot(generations: Sequence, path: Path) -> Path:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [g.generation for g in generations]
    ax.plot(xs, [g.best for g in generations], marker="o", label="best so far")
    if any(g.incumbent < g.best for g in generations):
        ax.plot(xs, [g.incumbent for g in generations], linestyle="--", label="incumbent (mean of its evaluations)")
    ax.plot(xs, [g.population_best for g in generations], marker=".", alpha=0.6, label="population best")
    ax.plot(xs, [g.mean for g in generations], marker=".", alpha=0.6, label="population mean")
    ax.set_xlabel("generation")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Search fitness per generation")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def training_curve_plot(curve: Sequence[dict], path: Path) -> Path:
    plt = _figure()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [r["epoch"] for r in curve]
    left.plot(epochs, [r["train_loss"] for r in curve], label="train loss")
    left.plot(epochs, [r["val_loss"] for r in curve], label="validation loss (cross-entropy)")
    left.set_xlabel("epoch")
    left.legend()
    right.plot(epochs, [r["val_accuracy"] for r in curve], color="tab:green")
    right.set_xlabel("epoch")
    right.set_ylabel("validation accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle("Training curve of the best genome")
    return _save(fig, path)


def confusion_plot(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path) -> Path:
    plt = _figure()
    matrix = np.asarray(matrix)
    size = max(4, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90 if len(class_names) > 10 else 0)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    if len(class_names) <= 20:
        for (i, j), value in np.ndenumerate(matrix):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    ax.set_title("Confusion matrix (test)")
    return _save(fig, path)


def error_grid_plot(
    images: torch.Tensor, labels: Sequence[int], probabilities: torch.Tensor, class_names: Sequence[str], path: Path,
    count: int = 16,
) -> Path:
    """The `count` wrong predictions made with the highest confidence, with both labels."""
    plt = _figure()
    predicted = probabilities.argmax(1)
    labels = torch.as_tensor(labels)
    wrong = torch.nonzero(predicted != labels).flatten()
    order = wrong[probabilities[wrong, predicted[wrong]].argsort(descending=True)][:count]
    columns = 4
    rows = max(1, -(-len(order) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, order.tolist()):
        image = images[index].permute(1, 2, 0).numpy()
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        confidence = probabilities[index, predicted[index]].item()
        ax.set_title(f"true {class_names[labels[index]]}\npred {class_names[predicted[index]]} ({confidence:.0%})", fontsize=8)
    if not len(order):
        axes.flat[0].text(0.5, 0.5, "no errors", ha="center", va="center")
    fig.suptitle("Most confidently wrong test images")
    return _save(fig, path)


def pareto_plot(front: Sequence, objectives: Sequence[str], path: Path) -> Path:
    """Accuracy against the second objective for the Pareto front."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    second = objectives[1]
    points = sorted((s.objectives(objectives)[1], s.result.score) for s in front)
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", drawstyle="steps-post")
    ax.set_xlabel(second)
    ax.set_ylabel("validation accuracy")
    ax.set_xscale("log" if all(p[0] > 0 for p in points) else "linear")
    ax.set_title("Pareto front")
    ax.grid(alpha=0.3)
    return _save(fig, path)
