"""Search quality with real training: our default against TPE and random on a CIFAR-10 subset.

Every method gets the same budget in training epochs (`search.max_epochs`) over the same
space, with paired seeds (seed s of every method searches the same data split). Each
search's incumbent is then trained as the `train` stage trains it (`train.epochs`,
`train.select`, `train.refit` from params.yaml) and scored on the subset's test split, which
neither the search nor the final training saw. Optional methods compare successive halving
with continuing rungs against restarting ones, and the portfolio against none. Writes
bench/results/search_quality.json (per method and seed: best validation accuracy, test
accuracy of the trained incumbent, epochs spent, the best-so-far curve; mean and 95% t
interval of both numbers) and search_quality.png.

    python bench/search_quality.py --images 3000 --budget 60 --seeds 0,1,2,3,4
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import SHARED, SHARED_SHA256  # noqa: E402
from pipeline.data.prepare import prepare  # noqa: E402
from pipeline.data.settings import DataSettings  # noqa: E402
from pipeline.data.types import PreparedData  # noqa: E402
from pipeline.genome.genome import genome_seed  # noqa: E402
from pipeline.genome.portfolio import portfolio  # noqa: E402
from pipeline.genome.problem import CNNProblem  # noqa: E402
from pipeline.nn.inference import predict_logits  # noqa: E402
from pipeline.params import params_from_dict  # noqa: E402
from pipeline.search import run_search  # noqa: E402
from pipeline.train.final import train_final  # noqa: E402

SPACE = {
    "stages": {"low": 1, "high": 3},
    "blocks_per_stage": {"low": 1, "high": 2},
    "width": {"low": 8, "high": 48},
    "kernel": [3, 5],
    "norm": ["batch", "group", "none"],
    "pooling": ["max", "avg"],
    "residual": [True, False],
    "attention": ["none", "se"],
    "optimizer": ["sgd_momentum", "sgd_nesterov", "adam", "adamw", "rmsprop"],
    "lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "batch_size": [64, 128, 256],
    "scheduler": ["none", "cosine", "onecycle"],
    "label_smoothing": {"low": 0.0, "high": 0.2},
    "augment": ["none", "flip", "translate"],
}


def methods() -> dict[str, dict]:
    ours = yaml.safe_load((ROOT / "params.yaml").read_text())["search"]
    ours = {k: ours[k] for k in ("algorithm", "population", "offspring", "tournament", "gene_mutation", "epochs",
                                 "portfolio")}
    return {
        "ours": ours,
        "tpe": {"algorithm": "tpe", "population": 2, "epochs": ours["epochs"], "portfolio": False},
        "random": {"algorithm": "random", "population": 8, "epochs": ours["epochs"], "portfolio": False},
        "ours_no_portfolio": {**ours, "portfolio": False},
        "ours_halving_continue": {**ours, "fidelity": {"rungs": [1, 3], "eta": 3, "mode": "continue"}},
        "ours_halving_restart": {**ours, "fidelity": {"rungs": [1, 3], "eta": 3, "mode": "restart"}},
    }


def load(images: int, dataset: str) -> tuple[PreparedData, str]:
    if dataset == "digits":
        settings = DataSettings(dataset="digits", val_fraction=0.2, test_fraction=0.2)
        data = prepare(settings, 0, ROOT / "bench" / "results" / "downloads")
        return data, f"embedded digits (8x8): {len(data.train)} train / {len(data.val)} validation / {len(data.test)} test"
    if not SHARED.exists():
        raise SystemExit(f"search_quality: {SHARED} not found: the CIFAR-10 comparison needs the shared "
                         "JPEG archive (or use --dataset digits)")
    settings = DataSettings(dataset="imagefolder", source=str(SHARED), sha256=SHARED_SHA256, max_samples=images,
                            val_fraction=0.2, test_fraction=0.2)
    data = prepare(settings, 0, ROOT / "bench" / "results" / "downloads")
    return data, (f"shared CIFAR-10 JPEG archive, {images}-image stratified subset: {len(data.train)} train / "
                  f"{len(data.val)} validation / {len(data.test)} test")


def interval(values: list[float]) -> list[float]:
    """Mean and 95% t interval."""
    from scipy import stats

    mean = statistics.mean(values)
    if len(values) < 2:
        return [mean, mean, mean]
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return [round(mean, 4), round(float(mean - half), 4), round(float(mean + half), 4)]


def run(method: str, settings: dict, seed: int, data: PreparedData, budget: int, workers: int, train: dict,
        final: bool) -> dict:
    search = {"generations": 100_000, "max_epochs": budget, "backend": "processes", "workers": workers, **settings}
    params = params_from_dict({"seed": seed, "space": SPACE, "search": search})
    problem = CNNProblem(params.space, data, max_params=2_000_000)
    first = portfolio(params.space, data.input_shape) if params.search.portfolio else []  # as the search stage does
    started = time.perf_counter()
    outcome = run_search(problem, params.search, seed, warm_start=first, log=lambda m: None)
    seconds = time.perf_counter() - started
    top = params.search.budgets[-1]
    spent, best, curve = 0.0, 0.0, []
    for _, rung, result in outcome.history:
        spent += result.budget if rung == 0 or settings.get("fidelity", {}).get("mode") != "continue" else \
            result.budget - params.search.budgets[rung - 1]
        if result.budget == top:  # only full-budget scores are comparable across methods
            best = max(best, result.score)
        curve.append([spent, best])
    row = {"best_val_accuracy": outcome.best_result.score, "best_epochs": outcome.best_result.budget,
           "evaluations": len(outcome.history), "epochs_spent": outcome.epochs_spent, "search_seconds": round(seconds, 1),
           "curve": curve}
    if final:
        genome = outcome.best_genome
        started = time.perf_counter()
        model, _ = train_final(genome, data, train["epochs"], genome_seed(seed, genome, train["epochs"]),
                               torch.device("cpu"), select=train["select"], refit=train["refit"])
        logits = predict_logits(model, data.test.images, torch.device("cpu"))
        row["test_accuracy"] = float((logits.argmax(1) == data.test.labels).float().mean())
        row["train_seconds"] = round(time.perf_counter() - started, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--budget", type=int, default=60, help="training epochs per search")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--methods", default="ours,tpe,random")
    parser.add_argument("--final-epochs", type=int, default=15)
    parser.add_argument("--no-final", default="ours_halving_continue,ours_halving_restart,ours_no_portfolio",
                        help="methods whose incumbents are not trained and tested")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dataset", choices=["cifar10", "digits"], default="cifar10",
                        help="digits: the embedded 8x8 set, for cheap comparisons of search variants")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "search_quality.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, source = load(args.images, args.dataset)
    train = {**yaml.safe_load((ROOT / "params.yaml").read_text())["train"], "epochs": args.final_epochs}
    catalog = methods()
    results = {"data": source, "epochs_budget": args.budget, "space": SPACE, "final_training": train,
               "methods": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for method in args.methods.split(","):
        runs = {}
        for seed in map(int, args.seeds.split(",")):
            runs[seed] = run(method, catalog[method], seed, data, args.budget, args.workers, train,
                             final=method not in args.no_final.split(","))
            print(method, seed, {k: v for k, v in runs[seed].items() if k != "curve"}, flush=True)
            results["methods"][method] = summarize(catalog[method], runs)
            write_atomically(out, results)  # a long benchmark keeps what it finished if it is stopped
    plot(results, out.with_suffix(".png"))
    for method, entry in results["methods"].items():
        test = entry.get("test_accuracy")
        print(f"{method:24s} best val {entry['best_val_accuracy']}  test {test}  epochs {entry['epochs_spent']:.0f}")
    print(f"wrote {out} and {out.with_suffix('.png')}")


def summarize(settings: dict, runs: dict) -> dict:
    entry = {"settings": settings, "per_seed": runs,
             "best_val_accuracy": interval([r["best_val_accuracy"] for r in runs.values()]),
             "epochs_spent": statistics.mean(r["epochs_spent"] for r in runs.values())}
    if all("test_accuracy" in r for r in runs.values()):
        entry["test_accuracy"] = interval([r["test_accuracy"] for r in runs.values()])
    return entry


def write_atomically(path: Path, results: dict) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(results, indent=1) + "\n")
    partial.replace(path)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for index, (method, entry) in enumerate(results["methods"].items()):
        for n, run in enumerate(entry["per_seed"].values()):
            xs, ys = zip(*run["curve"]) if run["curve"] else ([], [])
            ax.step(xs, ys, where="post", color=f"C{index}", alpha=0.7, label=method if n == 0 else None)
    ax.set_xlabel("training epochs spent")
    ax.set_ylabel("best full-budget validation accuracy so far")
    ax.set_title(f"{results['data'].split(',')[0].split(':')[0]}: {results['epochs_budget']} epochs per search", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
