"""The genetic search: reproducible, memoized, elitist, robust to failing candidates."""
from __future__ import annotations

import pytest

from pipeline.backends import SerialBackend
from pipeline.candidate import CandidateContext
from pipeline.genome import genome_key
from pipeline.params import params_from_dict

TINY_SPACE = {
    "stages": {"low": 1, "high": 2},
    "width": {"low": 4, "high": 12},
    "norm": ["batch", "group", "none"],
    "optimizer": ["adam", "sgd_momentum"],
    "lr": {"low": 1e-3, "high": 3e-2, "log": True},
    "batch_size": [32, 64],
}


def tiny_params(**search):
    settings = {"population": 6, "generations": 2, "epochs": 1, "hall_of_fame": 3}
    settings.update(search)
    return params_from_dict({"seed": 3, "space": TINY_SPACE, "search": settings})


def run(params, data, max_params=None):
    from pipeline.search import run_ga

    backend = SerialBackend(CandidateContext(data, "cpu", False, max_params))
    seen = []
    outcome = run_ga(params.space, params.search, params.seed, data.input_shape, backend.map,
                     on_result=lambda g, r: seen.append((g, r.key)))
    return outcome, seen


def _comparable(outcome):
    return [(g, r.key, r.val_accuracy, r.val_loss, r.params, r.failure) for g, r in outcome.history]


def test_same_seed_gives_the_same_search(tiny_digits):
    first, _ = run(tiny_params(), tiny_digits)
    second, _ = run(tiny_params(), tiny_digits)
    assert _comparable(first) == _comparable(second)
    assert first.best_genome == second.best_genome


def test_identical_genomes_are_trained_once_and_reported_once(tiny_digits):
    outcome, reported = run(tiny_params(generations=3), tiny_digits)
    keys = [r.key for _, r in outcome.history]
    assert len(keys) == len(set(keys))
    assert [k for _, k in reported] == keys
    assert len(outcome.history) <= 6 * 4


def test_best_is_the_fittest_ever_evaluated(tiny_digits):
    outcome, _ = run(tiny_params(), tiny_digits)
    fittest = max((r for _, r in outcome.history), key=lambda r: (r.val_accuracy, -r.val_loss))
    assert outcome.best_result.key == fittest.key
    assert genome_key(outcome.best_genome) == fittest.key
    assert [r.key for r in outcome.hall_of_fame][0] == fittest.key


def test_elitism_best_per_generation_never_drops(tiny_digits):
    outcome, _ = run(tiny_params(generations=3), tiny_digits)
    bests = [g.best for g in outcome.generations]
    assert bests == sorted(bests)
    assert [g.generation for g in outcome.generations] == [0, 1, 2, 3]


def test_failing_candidates_are_recorded_and_the_search_completes(tiny_digits):
    outcome, _ = run(tiny_params(), tiny_digits, max_params=1)
    assert outcome.history and all(r.failure == "too_large" for _, r in outcome.history)
    assert outcome.best_result.val_accuracy == 0.0


def test_different_seed_gives_a_different_search(tiny_digits):
    first, _ = run(tiny_params(), tiny_digits)
    other = params_from_dict({"seed": 4, "space": TINY_SPACE, "search": {"population": 6, "generations": 2, "epochs": 1}})
    second, _ = run(other, tiny_digits)
    assert _comparable(first) != _comparable(second)


def test_serial_and_process_backends_give_identical_results(tiny_digits):
    from pipeline.backends import ProcessBackend
    from pipeline.search import run_ga

    params = tiny_params()
    serial, _ = run(params, tiny_digits)
    pool = ProcessBackend(CandidateContext(tiny_digits, "cpu", False, None), workers=2)
    try:
        parallel = run_ga(params.space, params.search, params.seed, tiny_digits.input_shape, pool.map)
    finally:
        pool.close()
    assert _comparable(parallel) == _comparable(serial)
