"""The generic engine on a problem that is not the CNN genome: a quadratic over two integer
genes, searched through the same entry point the `search` stage uses."""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field

import pytest

from pipeline.search import Choice, IntRange, Problem, Result, SearchSettings, Space, Task, run_search
from pipeline.search.progress import SearchProgress

OPTIMUM = {"x": 3, "y": -2}


@dataclass(frozen=True)
class Quadratic(Problem):
    """Score -(x-3)^2 - (y+2)^2 on a 21 x 21 grid; the optimum scores 0."""

    space: Space = field(default_factory=lambda: Space((("x", IntRange(-10, 10)), ("y", IntRange(-10, 10)))))

    @property
    def deterministic(self) -> bool:
        return True

    def evaluate(self, task: Task) -> Result:
        x, y = task.genome["x"], task.genome["y"]
        return Result.of(task, score=-float((x - OPTIMUM["x"]) ** 2 + (y - OPTIMUM["y"]) ** 2), loss=0.0)


def settings(**values) -> SearchSettings:
    return SearchSettings(**{"population": 8, "offspring": 8, "generations": 9, "backend": "serial", **values})


@pytest.mark.parametrize("algorithm", ["ga", "aging", "surrogate", "random", "tpe"])
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


@dataclass(frozen=True)
class Warped(Quadratic):
    """The quadratic's scores through a steep monotone map into large negative numbers
    (as a table's negative errors spanning orders of magnitude), or failed on every
    `fail_every`-th column of x."""

    fail_every: int | None = None

    def evaluate(self, task: Task) -> Result:
        plain = super().evaluate(task)
        if self.fail_every and task.genome["x"] % self.fail_every == 0:
            return Result.of(task, failure="exception", detail="a failing stripe")
        return Result.of(task, score=-(10.0 ** (-plain.score / 10.0)), loss=0.0)


@pytest.mark.parametrize("algorithm", ["surrogate", "aging", "ga"])
def test_rank_based_strategies_follow_the_order_of_scores_not_their_scale(algorithm):
    plain = run_search(Quadratic(), settings(algorithm=algorithm, offspring=2), seed=4, log=lambda m: None)
    warped = run_search(Warped(), settings(algorithm=algorithm, offspring=2), seed=4, log=lambda m: None)
    assert [r.key for _, _, r in plain.history] == [r.key for _, _, r in warped.history]
    assert warped.best.genome == plain.best.genome


def test_failures_rank_below_every_finished_result_whatever_the_sign():
    outcome = run_search(Warped(fail_every=3), settings(algorithm="surrogate", offspring=2), seed=2, log=lambda m: None)
    failed = [r for _, _, r in outcome.history if r.failed]
    finished = [r for _, _, r in outcome.history if not r.failed]
    assert failed and finished and all(r.score < 0 for r in finished)
    assert not outcome.best.failed and outcome.best.result.score == max(r.score for r in finished)
    assert [s.failed for s in outcome.hall_of_fame] == sorted(s.failed for s in outcome.hall_of_fame)


def test_a_search_leaves_the_global_random_generator_alone():
    import random

    random.seed(123)
    before = random.getstate()
    first = run_search(Quadratic(), settings(algorithm="ga"), seed=1, log=lambda m: None)
    assert random.getstate() == before
    random.seed(999)  # another global state changes nothing in the search
    again = run_search(Quadratic(), settings(algorithm="ga"), seed=1, log=lambda m: None)
    assert [r.key for _, _, r in first.history] == [r.key for _, _, r in again.history]


@pytest.mark.parametrize("options, message", [
    ({"trees": 0}, "search.options.trees: 0 is out of range"),
    ({"tres": 16}, "search.options.tres: unknown key"),
    ({"crossover": 0.5}, "search.options.crossover: unknown key"),  # a ga knob, not the surrogate's
    ({"acquisition": "ucb"}, "search.options.acquisition: unknown choice 'ucb'"),
])
def test_options_are_checked_against_the_strategys_own_knobs(options, message):
    from pipeline.params import params_from_dict
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        params_from_dict({"search": {"algorithm": "surrogate", "options": options}})
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_knob_that_moved_into_options_says_where_it_went():
    from pipeline.params import params_from_dict
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^search.crossover: now a knob of the strategy \(ga, nsga2\): "
                                          r"write it as search.options.crossover$"):
        params_from_dict({"search": {"crossover": 0.5}})
    ga = params_from_dict({"search": {"algorithm": "ga", "options": {"crossover": 0.9, "tournament": 2}}})
    assert ga.search.options == {"crossover": 0.9, "tournament": 2}


@dataclass(frozen=True)
class Clipped(Quadratic):
    """Its repair moves every x above 0 to 0: what is trained is not what was asked."""

    def repair(self, genome: dict) -> dict:
        return {**genome, "x": min(genome["x"], 0)}


def test_tpe_learns_the_score_of_what_was_trained():
    from pipeline.search.backends import SerialBackend
    from pipeline.search.loop import search_loop
    from pipeline.search.strategies import make_strategy

    problem, values = Clipped(), settings(algorithm="tpe", population=2, generations=14)
    strategy = make_strategy(problem.space, values, 5, problem.repair)
    outcome = search_loop(strategy, values, 5, SerialBackend(problem).map, log=lambda m: None)
    trials = [t for t in strategy.study.trials if t.state.name == "COMPLETE"]
    assert len(trials) == 30  # one per proposal; repeats of a trained genome are memo hits
    assert {json.dumps(t.params, sort_keys=True) for t in trials} == {r.key for _, _, r in outcome.history}
    asked = [t for t in strategy.study.trials if t.state.name == "FAIL"]
    assert asked, "this space should make the repair change some asked configurations"
    for trial in trials:
        assert problem.repair(trial.params) == trial.params
        assert trial.value == -float((trial.params["x"] - 3) ** 2 + (trial.params["y"] + 2) ** 2)


@dataclass(frozen=True)
class Noisy(Quadratic):
    """The quadratic plus seeded noise (a lucky seed can lift a poor genome), costing x+11."""

    @property
    def deterministic(self) -> bool:
        return False

    def evaluate(self, task: Task) -> Result:
        noise = ((task.seed % 1000) / 1000.0 - 0.5) * 8.0
        return Result.of(task, score=super().evaluate(task).score + noise, loss=0.0, cost=task.genome["x"] + 11.0)


def test_the_incumbent_is_evaluated_again_and_stands_on_its_mean():
    outcome = run_search(Noisy(), settings(algorithm="surrogate", offspring=2, incumbent_evaluations=3), seed=6,
                         log=lambda m: None)
    by_key = {}
    for _, _, result in outcome.history:
        by_key.setdefault(result.key, []).append(result)
    best = by_key[outcome.best.key]
    assert len(best) == 3 and len({r.seed for r in best}) == 3
    assert outcome.best.result.score == pytest.approx(sum(r.score for r in best) / 3)
    repeated = [results for results in by_key.values() if len(results) > 1]
    assert all(len(results) <= 3 for results in repeated)
    again = run_search(Noisy(), settings(algorithm="surrogate", offspring=2, incumbent_evaluations=3), seed=6,
                       log=lambda m: None)
    assert [(r.key, r.seed) for _, _, r in again.history] == [(r.key, r.seed) for _, _, r in outcome.history]


def test_max_cost_stops_the_search_once_the_costs_add_up():
    outcome = run_search(Noisy(), settings(algorithm="random", max_cost=300.0, generations=1000), seed=0,
                         log=lambda m: None)
    spent = [r.cost for _, _, r in outcome.history]
    assert sum(spent[:-8]) < 300.0 <= sum(spent)  # the generation that crossed the limit finished
    assert outcome.stop_reason == "max_cost (300) reached"


@dataclass(frozen=True)
class Foreseen(Problem):
    """The quadratic whose cost (|x| + 1 per budget unit) is known before training."""

    space: Space = field(default_factory=lambda: Space((("x", IntRange(-10, 10)), ("y", IntRange(-10, 10)))))

    def cost_of(self, genome: dict, epochs: float) -> float:
        return epochs * (abs(genome["x"]) + 1.0)

    def evaluate(self, task: Task) -> Result:
        x, y = task.genome["x"], task.genome["y"]
        return Result.of(task, score=-float((x - 3) ** 2 + (y + 2) ** 2), loss=0.0, cost=self.cost_of(task.genome, task.budget))


@pytest.mark.parametrize("algorithm", ["random", "surrogate"])
def test_a_cost_the_problem_foresees_is_never_overspent(algorithm):
    outcome = run_search(Foreseen(), settings(algorithm=algorithm, max_cost=120.0, generations=1000), seed=0,
                         log=lambda m: None)
    spent = sum(r.cost for _, _, r in outcome.history)
    assert 60.0 < spent <= 120.0 and outcome.stop_reason == "max_cost (120) reached"
    tiny = run_search(Foreseen(), settings(algorithm=algorithm, max_cost=0.5, generations=1000), seed=0,
                      log=lambda m: None)
    assert len(tiny.history) == 1  # nothing fits, yet the first training runs: the search has an answer


@dataclass(frozen=True)
class Priced(Problem):
    """The quadratic, with a third gene that changes only the cost: `fast` trains for 1,
    `slow` for 10 (of whatever unit) and both score the same."""

    space: Space = field(default_factory=lambda: Space((("x", IntRange(-10, 10)), ("y", IntRange(-10, 10)),
                                                        ("speed", Choice(("fast", "slow"))))))

    def evaluate(self, task: Task) -> Result:
        x, y = task.genome["x"], task.genome["y"]
        return Result.of(task, score=-float((x - 3) ** 2 + (y + 2) ** 2), loss=0.0,
                         cost=1.0 if task.genome["speed"] == "fast" else 10.0)


def test_the_cost_aware_surrogate_prefers_the_cheaper_of_equally_good_candidates():
    from pipeline.search.scored import Archive, Scored
    from pipeline.search.strategies import make_strategy
    from pipeline.search.strategies.surrogate_model import CostModel, Surrogate

    problem = Priced()
    values = settings(algorithm="surrogate", options={"cost_weight": 1.0})
    strategy = make_strategy(problem.space, values, 0, problem.repair)
    archive = Archive()
    for x in range(-10, 11, 2):
        for speed in ("fast", "slow"):
            genome = {"x": x, "y": -2, "speed": speed}
            archive.add([Scored(genome, problem.evaluate(Task(json.dumps(genome), genome, 1, 0)))])
    model = Surrogate.fitted(problem.space, archive.all(), 16, 0)
    model.cost = CostModel.fitted(problem.space, archive.all(), 16, 0)
    fast, slow = {"x": 3, "y": -2, "speed": "fast"}, {"x": 3, "y": -2, "speed": "slow"}
    predicted = model.mean([fast, slow])
    assert abs(predicted[0] - predicted[1]) < 0.35  # the model sees no difference in score...
    assert model.cost.predict([fast])[0] < model.cost.predict([slow])[0] / 3  # ...but in cost
    assert strategy.value(model, [fast])[0] > strategy.value(model, [slow])[0]

    plain = run_search(problem, settings(algorithm="surrogate", offspring=2, max_cost=400.0, generations=1000),
                       seed=1, log=lambda m: None)
    priced = run_search(problem, values.model_copy(update={"offspring": 2, "max_cost": 400.0, "generations": 1000}),
                        seed=1, log=lambda m: None)
    share = [sum(r.genome["speed"] == "fast" for _, _, r in o.history) / len(o.history) for o in (plain, priced)]
    assert share[1] > share[0] and len(priced.history) > len(plain.history)


def test_every_backend_result_says_when_it_trained():
    import time

    before = time.time()
    outcome = run_search(Quadratic(), SearchSettings(algorithm="random", population=3, generations=1, backend="serial"), 0,
                         log=lambda message: None)
    assert all(before <= r.started <= r.finished <= time.time() for _, _, r in outcome.history)


def test_the_best_so_far_never_falls_while_the_incumbent_may():
    """A re-evaluation can lower the incumbent's mean; the generation records keep the best
    standing so far (monotone) and the incumbent's standing now, which ends as the answer."""
    # a seed on which a genome dethrones the incumbent on one lucky evaluation and falls back
    # on its repeats a generation later
    outcome = run_search(Noisy(), settings(algorithm="aging", offspring=2, incumbent_evaluations=3), seed=5,
                         log=lambda m: None)
    bests = [g.best for g in outcome.generations]
    assert bests == sorted(bests)
    assert all(g.incumbent <= g.best for g in outcome.generations)
    assert any(g.incumbent < g.best for g in outcome.generations)
    assert outcome.generations[-1].incumbent == outcome.best.result.score
    progress = SearchProgress(settings(), 10**9, stream=io.StringIO())
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        for record in outcome.generations:
            progress.generation(record)
    lines = printed.getvalue().splitlines()
    assert len(lines) == len(outcome.generations)
    for line, record in zip(lines, outcome.generations):
        assert (f"incumbent now {record.incumbent:.4f}," in line) == (record.incumbent < record.best)
