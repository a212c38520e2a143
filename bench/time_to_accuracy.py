"""Time to accuracy: the whole pipeline against a textbook recipe trained for the same budget.

On a stratified subset of the shared CIFAR-10 JPEG archive (train / validation / a test
split nothing but the final scoring sees), each method gets the same budget in reference
seconds (`pipeline.train.cost`: about that many seconds of one core here) for everything
it trains, and its final model is scored on the test split:

    a     the pipeline's default: params.yaml's search (portfolio first) for `budget.search_share`
          of the budget, the winner trained with the rest (`train.epochs: auto`, select/refit
          as params.yaml), fused
    b     the best textbook recipe of the portfolio trained for the whole budget, no search
          (the best by validation after a screening at the search's fidelity that b does not
          pay for: a practitioner who already knows which recipe suits the data)
    b2    the portfolio alone: its recipes screened at the search's fidelity within the search's
          share of the budget (as the pipeline's search would: a recipe whose predicted cost no
          longer fits is not started, the first always is), the best trained with the rest
          (what evolution must add to)
    c     Optuna's TPE (one trial at a time) with the same share and final-training rule
    d     random search, same

Every run is one job on one core (serial search, one thread), two jobs at a time on a
2-core machine; results are deterministic for a seed (the budget is in reference seconds),
and wall times are reported as measured. The JSON keeps every finished run, so a stopped
benchmark resumes where it was. Writes bench/results/time_to_accuracy.{json,png} and the
README table between its markers. With `--techniques` the space also offers the speed runs'
trainer techniques (`TECHNIQUES`), so the portfolio's speed-run recipe keeps them and the
search can choose them; that run writes time_to_accuracy_techniques.{json,png}. A run with
`--out` writes its own files; any file's README table is the one between the markers named
after it (`time-to-accuracy-techniques` for time_to_accuracy_techniques.json), if the README
has them. `--set key=value` changes params.yaml for every method of the run.

    python bench/time_to_accuracy.py --budgets 600,1200 --seeds 0,1,2
    python bench/time_to_accuracy.py --budgets 600 --seeds 0 --methods a,b2 --techniques
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recorded import parse_sets, publish, recorded_runs, run_missing  # noqa: E402
from bench.throughput import SHARED, SHARED_SHA256  # noqa: E402
from pipeline.data.prepare import load_prepared, prepare, save_prepared  # noqa: E402
from pipeline.data.settings import DataSettings  # noqa: E402
from pipeline.deploy.fusion import fuse_model  # noqa: E402
from pipeline.genome.genome import genome_seed  # noqa: E402
from pipeline.genome.portfolio import portfolio  # noqa: E402
from pipeline.genome.problem import CNNProblem  # noqa: E402
from pipeline.nn.inference import predict_logits  # noqa: E402
from pipeline.params import params_from_dict  # noqa: E402
from pipeline.search import run_search  # noqa: E402
from pipeline.train import budget as budgets  # noqa: E402
from pipeline.train.final import train_final  # noqa: E402

RESULTS = ROOT / "bench" / "results"
METHODS = ("a", "b", "b2", "c", "d")
LABELS = {"a": "(a) pipeline default", "b": "(b) best textbook recipe, whole budget", "b2": "(b2) portfolio alone",
          "c": "(c) TPE", "d": "(d) random"}


#: The trainer techniques `--techniques` adds to params.yaml's space (README, "Trainer techniques").
TECHNIQUES = {"norm": ["batch_no_scale"], "augment": ["flip_translate", "alternating_flip", "alternating_flip_translate"],
              "whiten": [False, True], "tta": [False, True], "ema": [0.0, 0.99], "lr_scaling": ["none", "linear", "sqrt"]}


def params_for(method: str, total: float, seed: int, techniques: bool = False, overrides: tuple = ()):
    """params.yaml with this budget, run on one core; the strategy and portfolio by method;
    with `techniques`, the space offers the speed runs' techniques too; `overrides` are
    (dotted key, YAML value) pairs set first, as `dvc exp run -S` would."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in overrides:
        *path, leaf = key.split(".")
        section = raw
        for name in path:
            section = section[name]
        section[leaf] = yaml.safe_load(value)
    if techniques:
        for gene, values in TECHNIQUES.items():
            offered = raw["space"].get(gene, [])
            raw["space"][gene] = offered + [v for v in values if v not in offered]
    raw["seed"] = seed
    raw["budget"] = {**raw["budget"], "unit": "reference_seconds", "total": total}
    raw["search"] = {**raw["search"], "backend": "serial", "workers": 1}
    if method == "c":
        raw["search"].update(algorithm="tpe", population=1, portfolio=False, options={})
    elif method == "d":
        raw["search"].update(algorithm="random", population=2, portfolio=False, options={})
    return params_from_dict(raw)


def data_for(seed: int, images: int):
    """The subset split by this seed, prepared once and kept under bench/results/downloads."""
    folder = RESULTS / "downloads" / f"tta-{images}-seed{seed}"
    if not (folder / "meta.json").exists():
        settings = DataSettings(dataset="imagefolder", source=str(SHARED), sha256=SHARED_SHA256, max_samples=images,
                                val_fraction=0.15, test_fraction=0.2)
        save_prepared(prepare(settings, seed, RESULTS / "downloads"), folder)
    return load_prepared(folder)


def screened(params, problem, data, allowance: float) -> tuple[dict, float, int]:
    """The portfolio's recipes at the search's fidelity (as many as `allowance` reference
    seconds pay for, 0 = all): the best by validation, the cost and the trainings."""
    recipes = portfolio(params.space, data.input_shape)
    settings = params.search.model_copy(update={"algorithm": "random", "population": len(recipes), "generations": 0,
                                                "max_cost": allowance, "options": {}})
    outcome = run_search(problem, settings, params.seed, warm_start=recipes, log=lambda m: None)
    return outcome.best_genome, outcome.cost_spent, outcome.trained


def final_model(genome: dict, params, data, left: float) -> tuple[torch.nn.Module, int]:
    report = budgets.BudgetReport("reference_seconds", left, 0.0, 0.0, 1.0)
    plan = budgets.final_epochs(report, budgets.final_epoch_cost(genome, data, params.train.refit))
    model, _ = train_final(genome, data, plan.epochs, genome_seed(params.seed, genome, plan.epochs),
                           torch.device("cpu"), select=params.train.select, refit=params.train.refit)
    return model, plan.epochs


def run_one(job: tuple[str, float, int, int, bool, tuple]) -> dict:
    method, total, seed, images, techniques, overrides = job
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = data_for(seed, images)
    params = params_for(method, total, seed, techniques, overrides)
    problem = CNNProblem(params.space, data, max_params=params.search.max_params)
    started = time.perf_counter()
    if method in ("b", "b2"):
        genome, spent, trained = screened(params, problem, data, 0.0 if method == "b" else params.budget.search_allowance)
        search_value, left = None, total if method == "b" else total - spent
        spent, trained = (0.0, 0) if method == "b" else (spent, trained)
    else:
        warm = portfolio(params.space, data.input_shape) if params.search.portfolio else []
        outcome = run_search(problem, budgets.search_settings(params.search, params.budget), seed, warm_start=warm,
                             log=lambda m: None)
        genome, spent, search_value = outcome.best_genome, outcome.cost_spent, outcome.best_result.score
        trained = outcome.trained
        left = total - spent
    search_seconds = time.perf_counter() - started
    model, epochs = final_model(genome, params, data, max(0.0, left))
    fused, _ = fuse_model(model.cpu().eval())
    logits = predict_logits(fused, data.test.images, torch.device("cpu"))
    seconds = time.perf_counter() - started
    return {"method": method, "budget": total, "seed": seed, "test_accuracy": float((logits.argmax(1) == data.test.labels).float().mean()),
            "search_val_accuracy": search_value, "search_cost": round(spent, 3), "search_trainings": trained,
            "final_epochs": epochs,
            "search_seconds": round(search_seconds, 1), "seconds": round(seconds, 1), "genome": genome}


def interval(values: list[float]) -> list[float]:
    """Mean and 95% t interval."""
    from scipy import stats

    mean = statistics.mean(values)
    if len(values) < 2:
        return [round(mean, 4)] * 3
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return [round(mean, 4), round(float(mean - half), 4), round(float(mean + half), 4)]


def table(runs: list[dict]) -> str:
    budgets_seen = sorted({r["budget"] for r in runs})
    lines = ["| budget (reference s) | method | test accuracy, mean [95% CI] | per seed | final epochs | wall min (mean) |",
             "| ---: | --- | --- | --- | --- | ---: |"]
    for total in budgets_seen:
        for method in METHODS:
            rows = sorted((r for r in runs if r["budget"] == total and r["method"] == method), key=lambda r: r["seed"])
            if not rows:
                continue
            mean, low, high = interval([r["test_accuracy"] for r in rows])
            lines.append(f"| {total:g} | {LABELS[method]} | {mean:.4f} [{low:.4f}, {high:.4f}] | "
                         + ", ".join(f"{r['test_accuracy']:.4f}" for r in rows) + " | "
                         + ", ".join(str(r["final_epochs"]) for r in rows)
                         + f" | {statistics.mean(r['seconds'] for r in rows) / 60:.1f} |")
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for index, method in enumerate(METHODS):
        rows = [r for r in runs if r["method"] == method]
        if not rows:
            continue
        ax.scatter([r["seconds"] / 60 for r in rows], [r["test_accuracy"] for r in rows], color=f"C{index}", alpha=0.5,
                   s=18)
        means = sorted((statistics.mean(r["seconds"] for r in rows if r["budget"] == b) / 60,
                        statistics.mean(r["test_accuracy"] for r in rows if r["budget"] == b))
                       for b in sorted({r["budget"] for r in rows}))
        ax.plot(*zip(*means), color=f"C{index}", marker="o", label=LABELS[method])
    ax.set_xlabel("wall time of the run, minutes (one core)")
    ax.set_ylabel("test accuracy of the final model")
    ax.set_title("CIFAR-10 subset: accuracy against time (dots: seeds; lines: means per budget)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="600,1200", help="reference seconds per run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one core each")
    parser.add_argument("--techniques", action="store_true", help="the space offers the speed runs' techniques too")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params.yaml value for every method, e.g. search.incumbent_evaluations=1 (use with --out)")
    parser.add_argument("--out", default=None, help="default: bench/results/time_to_accuracy[_techniques].json")
    args = parser.parse_args()
    name = "time_to_accuracy_techniques" if args.techniques else "time_to_accuracy"
    args.out = args.out or str(RESULTS / f"{name}.json")
    if not SHARED.exists():
        raise SystemExit(f"time_to_accuracy: {SHARED} not found: this benchmark needs the shared CIFAR-10 archive")
    out = Path(args.out)
    runs = recorded_runs(out)
    done = {(r["method"], r["budget"], r["seed"]) for r in runs}
    changes = parse_sets(args.set)
    jobs = [(m, float(b), int(s), args.images, args.techniques, changes) for b in args.budgets.split(",") for s in args.seeds.split(",")
            for m in args.methods.split(",") if (m, float(b), int(s)) not in done]
    for seed in {job[2] for job in jobs}:
        data_for(seed, args.images)  # prepared once, before the jobs read it
    runs = run_missing(run_one, jobs, args.jobs, out, {"images": args.images, "set": args.set}, runs, "genome")
    publish(runs, out, plot, table)


if __name__ == "__main__":
    main()
