"""Search headroom: what evolution adds to the portfolio at the search's fidelity, per unit of cost.

The time-to-accuracy benchmark (`bench/time_to_accuracy.py`) asks whether the pipeline's
search beats its portfolio alone once both train their pick with what is left of one budget.
This benchmark asks the question underneath, without the final training: given room, does
the default search (params.yaml's strategy, portfolio first, the search's epochs per
candidate) find a candidate that scores better on the validation split than the portfolio's
best recipe, and after how many reference seconds? On the same CIFAR-10 subsets and splits
as time to accuracy, one core per seed, the search runs with `--allowance` reference seconds
(its only stopping rule); every training is recorded with its origin (a portfolio recipe, a
random sample filling the first generation up to `search.population`, an evolved child, or
a confirmation of the incumbent with another seed), its validation accuracy and its
predicted cost. Writes bench/results/search_headroom.{json,png} and the README table
between its markers; `--set key=value` changes params.yaml (use with `--out`, whose file
name names the README markers, as in time to accuracy).

    python bench/search_headroom.py --allowance 1500 --seeds 0,1,2
    python bench/search_headroom.py --allowance 1000 --seeds 0,1 --set search.population=5 \
        --out bench/results/search_headroom_population5.json
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.recorded import parse_sets, publish, recorded_runs, run_missing  # noqa: E402
from bench.throughput import SHARED  # noqa: E402
from bench.time_to_accuracy import data_for, params_for  # noqa: E402
from pipeline.genome.portfolio import portfolio  # noqa: E402
from pipeline.genome.problem import CNNProblem  # noqa: E402
from pipeline.search import run_search  # noqa: E402
from pipeline.search.space import genome_key  # noqa: E402

RESULTS = ROOT / "bench" / "results"


ORIGINS = ("portfolio", "random", "child", "confirmation")


def run_one(job: tuple[int, float, int, tuple]) -> dict:
    """One seed's search with `allowance` reference seconds: every training in order."""
    seed, allowance, images, overrides = job
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = data_for(seed, images)
    params = params_for("a", allowance, seed, overrides=overrides)
    problem = CNNProblem(params.space, data, max_params=params.search.max_params)
    recipes = portfolio(params.space, data.input_shape)  # projected and repaired as the search proposes them
    recipe_keys = {genome_key(g) for g in recipes}
    settings = params.search.model_copy(update={"max_cost": allowance})
    outcome = run_search(problem, settings, seed, warm_start=recipes, log=lambda m: None)
    evaluations, spent, trainings = Counter(), 0.0, []
    for generation, _, result in outcome.history:
        key = genome_key(result.genome)
        origin = ("confirmation" if evaluations[key] else "portfolio" if key in recipe_keys
                  else "random" if generation == 0 else "child")
        evaluations[key] += 1
        spent += result.cost or 0.0
        trainings.append({"generation": generation, "origin": origin, "score": None if result.failed else result.score,
                          "cost": round(result.cost or 0.0, 3), "spent": round(spent, 3), "seconds": round(result.seconds, 1)})
    best = genome_key(outcome.best_genome)
    return {"seed": seed, "allowance": allowance, "trainings": trainings,
            "winner": "portfolio" if best in recipe_keys else "child",
            "winner_score": outcome.best_result.score,
            "winner_evaluations": evaluations[best],
            "cost_spent": round(outcome.cost_spent, 3)}


def best_of(run: dict, origin: str) -> float | None:
    scores = [t["score"] for t in run["trainings"] if t["origin"] == origin and t["score"] is not None]
    return max(scores) if scores else None


def table(runs: list[dict]) -> str:
    """Per seed: trainings, cost (reference s) and best validation accuracy by origin."""
    lines = ["| seed | portfolio: trainings, cost, best | first-generation random: trainings, cost, best "
             "| evolved children: trainings, cost, best | better than the portfolio's best | the search's pick |",
             "| ---: | --- | --- | --- | ---: | --- |"]
    for run in sorted(runs, key=lambda r: r["seed"]):
        by = {o: [t for t in run["trainings"] if t["origin"] == o] for o in ORIGINS}
        recipe = best_of(run, "portfolio")
        better = sum(1 for o in ("random", "child") for t in by[o] if t["score"] is not None and t["score"] > recipe)
        cells = []
        for origin in ("portfolio", "random", "child"):
            best = best_of(run, origin)
            cells.append(f"{len(by[origin])}, {sum(t['cost'] for t in by[origin]):.0f}, "
                         + (f"{best:.4f}" if best is not None else "-"))
        lines.append(f"| {run['seed']} | " + " | ".join(cells) + f" | {better} | {run['winner']} ({run['winner_score']:.4f}"
                     + (f", mean of {run['winner_evaluations']}" if run["winner_evaluations"] > 1 else "") + ") |")
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    markers = {"portfolio": "s", "random": "^", "child": "o", "confirmation": "x"}
    for index, run in enumerate(sorted(runs, key=lambda r: r["seed"])):
        colour = f"C{index}"
        best, curve = 0.0, []
        for t in run["trainings"]:
            if t["score"] is not None and t["origin"] != "confirmation":
                best = max(best, t["score"])
            curve.append((t["spent"], best))
        ax.step(*zip(*curve), where="post", color=colour, label=f"seed {run['seed']}: best so far")
        for origin, marker in markers.items():
            points = [(t["spent"], t["score"]) for t in run["trainings"] if t["origin"] == origin and t["score"] is not None]
            if points:
                ax.scatter(*zip(*points), color=colour, marker=marker, s=18, alpha=0.6,
                           label=origin if index == 0 else None)
    ax.set_xlabel("reference seconds spent by the search")
    ax.set_ylabel("validation accuracy at the search's epochs")
    ax.set_title("CIFAR-10 subset: the default search after its portfolio", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allowance", type=float, default=1500.0, help="the search's reference seconds per seed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2, help="seeds at a time, one core each")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a params.yaml value, e.g. search.population=5 (use with --out)")
    parser.add_argument("--out", default=str(RESULTS / "search_headroom.json"))
    args = parser.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"search_headroom: {SHARED} not found: this benchmark needs the shared CIFAR-10 archive")
    out = Path(args.out)
    runs = recorded_runs(out)
    done = {(r["seed"], r["allowance"]) for r in runs}
    jobs = [(int(s), args.allowance, args.images, parse_sets(args.set)) for s in args.seeds.split(",")
            if (int(s), args.allowance) not in done]
    for seed, _, images, _ in jobs:
        data_for(seed, images)  # prepared once, before the jobs read it
    runs = run_missing(run_one, jobs, args.jobs, out, {"images": args.images, "set": args.set}, runs, "trainings")
    publish(runs, out, plot, table)


if __name__ == "__main__":
    main()
