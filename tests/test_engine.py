"""The generic engine on a problem that is not the CNN genome: a quadratic over two integer
genes, searched through the same entry point the `search` stage uses."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipeline.search import IntRange, Result, SearchSettings, Space, Task, run_search

OPTIMUM = {"x": 3, "y": -2}


@dataclass(frozen=True)
class Quadratic:
    """Score -(x-3)^2 - (y+2)^2 on a 21 x 21 grid; the optimum scores 0."""

    space: Space = field(default_factory=lambda: Space((("x", IntRange(-10, 10)), ("y", IntRange(-10, 10)))))

    def repair(self, genome: dict) -> dict:
        return dict(genome)

    def evaluate(self, task: Task) -> Result:
        x, y = task.genome["x"], task.genome["y"]
        return Result.of(task, score=-float((x - OPTIMUM["x"]) ** 2 + (y - OPTIMUM["y"]) ** 2), loss=0.0)


def settings(**values) -> SearchSettings:
    return SearchSettings(**{"population": 8, "generations": 9, "backend": "serial", **values})


@pytest.mark.parametrize("algorithm", ["ga", "random", "tpe"])
def test_engine_searches_a_toy_space_reproducibly(algorithm):
    first = run_search(Quadratic(), settings(algorithm=algorithm), seed=1, log=lambda m: None)
    again = run_search(Quadratic(), settings(algorithm=algorithm), seed=1, log=lambda m: None)
    history = [(g, r.key, r.score) for g, _, r in first.history]
    assert history == [(g, r.key, r.score) for g, _, r in again.history]
    assert len({key for _, key, _ in history}) == len(history)  # every point evaluated once
    assert first.best_result.score == max(score for _, _, score in history)
    assert 60 <= len(history) <= 80 and first.best_result.score >= -2.0


def test_ga_and_tpe_find_the_optimum_and_beat_random_here():
    found = {a: run_search(Quadratic(), settings(algorithm=a), seed=1, log=lambda m: None).best for a in ("ga", "tpe", "random")}
    assert found["ga"].genome == OPTIMUM and found["tpe"].genome == OPTIMUM
    assert found["random"].result.score < 0


def test_grid_enumerates_a_toy_space_once():
    small = Quadratic(Space((("x", IntRange(0, 4)), ("y", IntRange(-3, -1)))))
    outcome = run_search(small, settings(algorithm="grid", population=4, max_evaluations=15), seed=0, log=lambda m: None)
    assert sorted((r.genome["x"], r.genome["y"]) for _, _, r in outcome.history) == [(x, y) for x in range(5) for y in (-3, -2, -1)]
    assert outcome.best.genome == OPTIMUM
