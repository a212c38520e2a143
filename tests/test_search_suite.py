"""The external suite: the engine on lookup tables nobody here wrote, through the entry point
the search stage uses, and a smoke run of the benchmark script (2 seeds, one task)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.tables import SUITE, TableProblem, extremes
from pipeline.search import SearchSettings, run_search
from tests.helpers import ROOT


def test_the_engine_searches_a_suite_task_through_the_stage_entry_point():
    problem = TableProblem("nb201/cifar10")
    assert problem.space.names == [f"Op{i}" for i in range(6)]
    settings = SearchSettings(algorithm="surrogate", population=10, offspring=5, generations=1000,
                              max_evaluations=60, backend="serial")
    first = run_search(problem, settings, 4, log=lambda m: None)
    again = run_search(problem, settings, 4, log=lambda m: None)
    assert [r.key for _, _, r in first.history] == [r.key for _, _, r in again.history]
    assert len(first.history) == 60
    seeds: dict[str, list[int]] = {}
    for _, _, result in first.history:
        seeds.setdefault(result.key, []).append(result.seed)
    # a genome comes back only as the incumbent evaluated again, each time with a seed of its own
    assert len(seeds) < 60 and all(len(set(s)) == len(s) <= 3 for s in seeds.values())
    best, worst = extremes("nb201/cifar10")
    assert worst < problem.truth(first.best_genome) <= best
    assert 0.0 <= problem.regret(first.best_genome) < problem.regret(first.history[0][2].genome) + 1e-9


def test_every_suite_task_loads_and_evaluates_deterministically():
    from pipeline.search import Task

    for task in SUITE:
        problem = TableProblem(task)
        genome = {name: gene.low if hasattr(gene, "low") else gene.options[0] for name, gene in problem.space.genes}
        one = problem.evaluate(Task("k", genome, 200, 7))
        assert one.score == problem.evaluate(Task("k", genome, 200, 7)).score
        assert 0.0 <= problem.regret(genome) <= 1.0


@pytest.mark.slow
def test_suite_smoke_run_writes_its_results(tmp_path):
    out = subprocess.run([sys.executable, "bench/search_suite.py", "--seeds", "2", "--tasks", "hpobench/car",
                          "--workers", "1", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "search_suite.json").read_text())
    ours = next(m for m in result["methods"] if m.startswith("ours"))
    assert set(result["methods"]) >= {ours, "tpe", "random"} and result["seeds"] == 2
    for method in result["methods"]:
        assert set(result["iqm"][method]["hpobench/car"]) == {"20", "50", "100", "200"}
    assert (tmp_path / "search_suite_tasks.png").stat().st_size > 10_000
    assert "| hpobench/car | 200 |" in (tmp_path / "search_suite.md").read_text()
