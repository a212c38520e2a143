"""Search quality at an equal budget: GA, GA with successive halving, random and TPE.

On a CIFAR-10 subset from the shared JPEG archive (random tensors if it is missing, which
makes the comparison meaningless and is said so in the output), each method gets the same
total budget in training epochs (`search.max_epochs`) over the same space, for three seeds.
Writes bench/results/search_quality.json (per method and seed: best validation accuracy
and the best-so-far curve against epochs spent) and search_quality.png.

    python bench/search_quality.py [--train 4000 --val 1000 --epochs-budget 72 --seeds 0,1,2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throughput import SHARED, SHARED_SHA256  # noqa: E402
from pipeline.data.prepare import prepare  # noqa: E402
from pipeline.data.settings import DataSettings  # noqa: E402
from pipeline.data.types import PreparedData, Split  # noqa: E402
from pipeline.genome.problem import CNNProblem  # noqa: E402
from pipeline.params import params_from_dict  # noqa: E402
from pipeline.search import run_search  # noqa: E402

SPACE = {
    "stages": {"low": 1, "high": 3},
    "width": {"low": 8, "high": 32},
    "kernel": [3, 5],
    "norm": ["batch", "group", "none"],
    "pooling": ["max", "avg"],
    "residual": [True, False],
    "attention": ["none", "se"],
    "optimizer": ["sgd_momentum", "adam", "adamw", "rmsprop"],
    "lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "batch_size": [64, 128, 256],
    "scheduler": ["none", "cosine", "onecycle"],
    "augment": ["none", "flip"],
}

METHODS = {
    "ga": {"algorithm": "ga", "epochs": 3},
    "ga_fidelity": {"algorithm": "ga", "fidelity": {"rungs": [1, 3], "eta": 3}},
    "random": {"algorithm": "random", "epochs": 3},
    "tpe": {"algorithm": "tpe", "epochs": 3},
}


def load(train: int, val: int) -> tuple[PreparedData, str]:
    if SHARED.exists():
        settings = DataSettings(dataset="imagefolder", source=str(SHARED), sha256=SHARED_SHA256,
                              max_samples=train + val + 100, val_fraction=val / (train + val + 100),
                              test_fraction=100 / (train + val + 100))
        data = prepare(settings, 0, Path(__file__).resolve().parent / "results" / "downloads")
        return data, f"shared CIFAR-10 JPEG archive: {len(data.train)} train / {len(data.val)} validation"
    generator = torch.Generator().manual_seed(0)
    fake = lambda n: Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator),
                           torch.randint(0, 10, (n,), generator=generator))
    data = PreparedData(fake(train), fake(val), fake(100), [str(i) for i in range(10)], [0.5] * 3, [0.25] * 3)
    return data, "RANDOM TENSORS (shared archive missing): accuracies are chance level"


def run(method: str, seed: int, data: PreparedData, budget: int, workers: int) -> dict:
    settings = {"population": 8, "generations": 1000, "max_epochs": budget, "backend": "processes", "workers": workers,
                **METHODS[method]}
    params = params_from_dict({"seed": seed, "space": SPACE, "search": settings})
    problem = CNNProblem(params.space, data, max_params=2_000_000)
    started = time.perf_counter()
    outcome = run_search(problem, params.search, seed, log=lambda m: None)
    spent, best, curve = 0, 0.0, []
    for _, rung, result in outcome.history:
        spent += result.budget
        # Best-so-far counts only full-budget (3-epoch) results: a 1-epoch screening score
        # of the halving method is not comparable to the others' 3-epoch results.
        if rung == len(params.search.budgets) - 1 or len(params.search.budgets) == 1:
            best = max(best, result.score)
        curve.append([spent, best])
    return {"best_val_accuracy": outcome.best_result.score, "best_epochs": outcome.best_result.budget,
            "evaluations": len(outcome.history), "epochs_spent": spent, "seconds": round(time.perf_counter() - started, 1),
            "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--epochs-budget", type=int, default=72)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "search_quality.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, source = load(args.train, args.val)
    results = {"data": source, "epochs_budget": args.epochs_budget, "space": SPACE, "methods": {}}
    for method in args.methods.split(","):
        runs = {}
        for seed in map(int, args.seeds.split(",")):
            runs[seed] = run(method, seed, data, args.epochs_budget, args.workers)
            print(method, seed, {k: v for k, v in runs[seed].items() if k != "curve"}, flush=True)
        accuracies = [r["best_val_accuracy"] for r in runs.values()]
        results["methods"][method] = {"mean_best_val_accuracy": round(statistics.mean(accuracies), 4),
                                      "per_seed": runs}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, out.with_suffix(".png"))
    for method, entry in results["methods"].items():
        print(f"{method:12s} mean best validation accuracy {entry['mean_best_val_accuracy']:.4f}")
    print(f"wrote {out} and {out.with_suffix('.png')}")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for index, (method, entry) in enumerate(results["methods"].items()):
        for n, run in enumerate(entry["per_seed"].values()):
            xs, ys = zip(*run["curve"]) if run["curve"] else ([], [])
            ax.step(xs, ys, where="post", color=f"C{index}", alpha=0.8, label=method if n == 0 else None)
    ax.set_xlabel("training epochs spent")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(f"Search quality at an equal budget ({results['epochs_budget']} epochs, 3 seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
