"""The search engine and its strategies on the CNN problem: reproducible, memoized,
elitist, budgeted, multi-fidelity, multi-objective, and the same on every backend
(continuing and reusing searches: test_continuation.py)."""
from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.genome.genome import default_genome
from pipeline.search.backends import ProcessBackend
from pipeline.search.scored import Scored
from tests.helpers import comparable, problem_of, search, task_of, tiny_params


def test_same_seed_same_search_and_other_seed_differs(tiny_digits):
    first, second = search(tiny_params(), tiny_digits), search(tiny_params(), tiny_digits)
    assert comparable(first) == comparable(second) and first.best_genome == second.best_genome
    assert comparable(search(tiny_params(seed=4), tiny_digits)) != comparable(first)


def test_each_genome_is_trained_once(tiny_digits):
    outcome = search(tiny_params(generations=3), tiny_digits)
    keys = [(r.key, r.budget) for _, _, r in outcome.history]
    assert len(keys) == len(set(keys))


def test_best_is_the_fittest_ever_evaluated_and_elitism_keeps_it(tiny_digits):
    outcome = search(tiny_params(generations=3), tiny_digits)
    fittest = max((r for _, _, r in outcome.history), key=lambda r: (r.score, -r.loss))
    assert outcome.best_result.key == fittest.key and outcome.hall_of_fame[0].result.key == fittest.key
    bests = [g.best for g in outcome.generations]
    assert bests == sorted(bests) and [g.generation for g in outcome.generations] == [0, 1, 2, 3]


def test_failing_candidates_are_recorded_and_the_search_completes(tiny_digits):
    outcome = search(tiny_params(), tiny_digits, max_params=1)
    assert outcome.history and all(r.failure == "too_large" for _, _, r in outcome.history)
    assert outcome.stop_reason == "completed"


HALVING = {"fidelity": {"rungs": [0.5, 2], "eta": 2}, "population": 6, "offspring": 4}
#: The default's way with noise: the incumbent trained again with seeds of its own.
REEVALUATED = {"algorithm": "surrogate", "population": 4, "offspring": 2, "generations": 3, "incumbent_evaluations": 3}


@pytest.mark.parametrize("settings", [{}, {"algorithm": "surrogate", **HALVING}, REEVALUATED],
                         ids=["ga", "surrogate-continuing", "surrogate-reevaluated"])
def test_backends_serial_and_processes_agree(tiny_digits, settings):
    """Also for continuing rungs, whose training states travel back from the workers, and for
    re-evaluations of the incumbent."""
    serial = search(tiny_params(**settings), tiny_digits)
    pool = ProcessBackend(problem_of(tiny_params(**settings), tiny_digits), workers=2)
    try:
        parallel = search(tiny_params(**settings), tiny_digits, backend=pool)
    finally:
        pool.close()
    assert comparable(parallel) == comparable(serial)
    assert len({rung for _, rung, _ in serial.history}) == len(settings.get("fidelity", {}).get("rungs", [3]))


def test_the_incumbent_is_trained_again_with_seeds_of_its_own_and_stands_on_the_mean(tiny_digits):
    outcome = search(tiny_params(**REEVALUATED), tiny_digits)
    trainings: dict[str, list] = {}
    for _, _, result in outcome.history:
        trainings.setdefault(result.key, []).append(result)
    repeated = {key: results for key, results in trainings.items() if len(results) > 1}
    assert repeated and all(len(results) == 3 and len({r.seed for r in results}) == 3 for results in repeated.values())
    standing = {s.key: s for s in outcome.hall_of_fame}
    for key, results in repeated.items():
        if key in standing:
            assert standing[key].result.score == pytest.approx(sum(r.score for r in results) / 3)
    assert any(key in standing for key in repeated)
    assert comparable(search(tiny_params(**REEVALUATED), tiny_digits)) == comparable(outcome)


@pytest.mark.parametrize("algorithm", ["aging", "surrogate"])
def test_aging_and_surrogate_are_deterministic_for_a_seed(tiny_digits, algorithm):
    first = search(tiny_params(algorithm=algorithm, population=6, offspring=3, generations=3), tiny_digits)
    second = search(tiny_params(algorithm=algorithm, population=6, offspring=3, generations=3), tiny_digits)
    assert comparable(first) == comparable(second) and len(first.history) == 6 + 3 * 3
    assert comparable(search(tiny_params(algorithm=algorithm, population=6, offspring=3, generations=3, seed=8),
                             tiny_digits)) != comparable(first)


def test_continuing_rungs_give_the_top_rung_one_uninterrupted_training(tiny_digits):
    """A candidate promoted to the top rung scores exactly what training it once, for the
    top budget, gives; and the race spends fewer epochs than restarting every rung."""
    from pipeline.search import Task, derive_seed

    continuing = search(tiny_params(generations=1, fidelity={"rungs": [1, 3], "eta": 3}), tiny_digits)
    restarting = search(tiny_params(generations=1, fidelity={"rungs": [1, 3], "eta": 3, "mode": "restart"}), tiny_digits)
    problem = problem_of(tiny_params(), tiny_digits)
    top = [r for _, rung, r in continuing.history if rung == 1]
    assert top
    for result in top:
        alone = problem.evaluate(Task(result.key, result.genome, 3, derive_seed(3, result.key, 3)))
        assert (alone.score, alone.loss) == (result.score, result.loss)
    counts = [sum(1 for _, rung, _ in outcome.history if rung == r) for outcome in (continuing, restarting) for r in (0, 1)]
    assert counts == [12, 4, 12, 4]  # two races of 6: continuing spends 12 + 4 x 2 epochs, restarting 12 + 4 x 3


def test_rung_states_are_deleted_when_the_search_ends(tiny_digits):
    from pipeline.search.evaluator import Evaluator

    folders = []
    original = Evaluator.close

    def close(self):
        folders.append((self.states.folder, self.states.peak))
        original(self)

    Evaluator.close = close
    try:
        search(tiny_params(generations=1, fidelity={"rungs": [1, 2], "eta": 2}), tiny_digits)
    finally:
        Evaluator.close = original
    (folder, peak), = folders
    assert folder is not None and not folder.exists() and peak > 0


def test_hyperband_brackets_start_generations_at_every_rung(tiny_digits):
    outcome = search(tiny_params(population=9, generations=2, fidelity={"rungs": [1, 3], "eta": 3,
                                                                        "brackets": "hyperband"}), tiny_digits)
    first_rung = {g: min(rung for gen, rung, _ in outcome.history if gen == g) for g, _, _ in outcome.history}
    assert first_rung == {0: 0, 1: 1, 2: 0}
    assert sum(1 for g, _, _ in outcome.history if g == 1) <= 3  # a third of the proposals, at the top rung


@pytest.mark.parametrize("algorithm", ["random", "tpe"])
def test_other_algorithms_run_and_are_reproducible(tiny_digits, algorithm):
    first = search(tiny_params(algorithm=algorithm), tiny_digits)
    second = search(tiny_params(algorithm=algorithm), tiny_digits)
    assert comparable(first) == comparable(second)
    assert len(first.history) == 6 * 3 and first.best_result.score > 0.1


def test_grid_enumerates_every_point_once(tiny_digits):
    space = {"width": [4, 8], "norm": ["batch", "none"], "optimizer": ["adam"], "stages": [1, 2]}
    outcome = search(tiny_params(space, algorithm="grid", population=3, max_evaluations=8), tiny_digits)
    genomes = {(r.genome["width"], r.genome["norm"], r.genome["stages"]) for _, _, r in outcome.history}
    assert len(outcome.history) == 8 and len(genomes) == 8
    assert outcome.stop_reason in ("search space exhausted", "max_evaluations (8) reached")


def test_grid_refuses_infinite_or_too_large_spaces():
    with pytest.raises(ConfigError, match="grid needs finite choices; lr"):
        tiny_params(algorithm="grid")
    with pytest.raises(ConfigError, match=r"the grid has 16 points, more than search.max_evaluations = 10"):
        tiny_params({"width": [4, 8], "norm": ["batch", "none"], "stages": [1, 2], "kernel": [3, 5]},
                    algorithm="grid", max_evaluations=10)


def test_nsga2_writes_a_non_dominated_front(tiny_digits):
    params = tiny_params(algorithm="nsga2", objectives=["accuracy", "params"], population=8, generations=2)
    outcome = search(params, tiny_digits)
    front = outcome.pareto
    assert front
    values = [s.objectives(["accuracy", "params"]) for s in front]
    for a in values:
        for b in values:
            dominates = b[0] >= a[0] and b[1] <= a[1] and (b[0] > a[0] or b[1] < a[1])
            assert not dominates, (a, b)
    archive = [s.objectives(["accuracy", "params"]) for s in make_strategy_archive(outcome)]
    for a in values:  # nothing evaluated dominates a front member
        assert not any(b[0] >= a[0] and b[1] <= a[1] and (b[0] > a[0] or b[1] < a[1]) for b in archive)
    assert outcome.best.result.score == max(v[0] for v in values)


def make_strategy_archive(outcome):
    return [Scored(r.genome, r, rung) for _, rung, r in outcome.history if not r.failure]


def test_fidelity_trains_fewer_epochs_and_records_every_rung(tiny_digits):
    plain = search(tiny_params(population=9, generations=1, epochs=4), tiny_digits)
    halving = search(tiny_params(population=9, generations=1, fidelity={"rungs": [1, 4], "eta": 3}), tiny_digits)
    epochs = lambda outcome: sum(r.budget for _, _, r in outcome.history)
    assert epochs(halving) < epochs(plain)
    rungs = [rung for _, rung, _ in halving.history]
    assert set(rungs) == {0, 1} and rungs.count(1) <= rungs.count(0) // 3 + 2
    assert halving.best.rung == 1 and halving.best_result.budget == 4


def test_fidelity_with_nsga2(tiny_digits):
    params = tiny_params(algorithm="nsga2", objectives=["accuracy", "flops"], population=8, generations=1,
                         fidelity={"rungs": [1, 2], "eta": 2})
    outcome = search(params, tiny_digits)
    assert outcome.pareto and {rung for _, rung, _ in outcome.history} == {0, 1}


@pytest.mark.parametrize("limit,reason", [({"max_evaluations": 7}, "max_evaluations (7) reached"),
                                          ({"patience": 1, "generations": 20}, "patience")])
def test_budgets_stop_cleanly_and_say_why(tiny_digits, limit, reason):
    outcome = search(tiny_params(**limit), tiny_digits)
    assert reason in outcome.stop_reason
    if "max_evaluations" in limit:
        assert len(outcome.history) == 7


def test_time_budget_stops_after_the_running_generation(tiny_digits):
    outcome = search(tiny_params(time_budget=0.001, generations=50), tiny_digits)
    assert outcome.stop_reason.startswith("time_budget") and len(outcome.generations) == 1


def test_epoch_budget_is_never_exceeded(tiny_digits):
    outcome = search(tiny_params(max_epochs=10, epochs=3, generations=20), tiny_digits)
    assert sum(r.budget for _, _, r in outcome.history) <= 10
    assert outcome.stop_reason == "max_epochs (10) reached"


def _kill_workers(backend, count, delay=1.5):
    """SIGKILL the pool's worker processes as they appear, `count` times in all."""
    import os
    import signal
    import threading
    import time

    killed = []

    def killer():
        deadline = time.time() + 120
        while len(killed) < count and time.time() < deadline:
            for pid in list(getattr(backend.pool, "_processes", {}) or {}):
                if pid not in killed:
                    time.sleep(delay)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    killed.append(pid)
                    break
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread, killed


@pytest.mark.slow
@pytest.mark.parametrize("kills,expected", [(1, ""), (2, "worker_lost")])
def test_lost_worker_is_retried_once_then_recorded(tiny_digits, kills, expected):
    genome = dict(default_genome(), width=16, batch_size=4)
    task = task_of(genome, 4)
    problem = problem_of(tiny_params(), tiny_digits)
    backend = ProcessBackend(problem, workers=1)
    try:
        thread, killed = _kill_workers(backend, kills)
        [result] = backend.map([task])
        thread.join(timeout=5)
    finally:
        backend.close()
    assert len(killed) == kills
    assert result.failure == expected
    if not expected:  # the retry gives exactly the result of an undisturbed run
        assert result.score == problem.evaluate(task).score
