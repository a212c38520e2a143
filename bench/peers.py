"""Searches from other projects, each through its own public API, on the suite's tables:
SMAC3's hyperparameter-optimisation facade (random forest, expected improvement, its own
initial design and local search; `smac` on PyPI, pure Python since 2.3: no compiled
random-forest package) and nevergrad's NGOpt (its own choice of optimizer for the space and
budget). Both are optional (`pip install 'automl-pipeline[bench]'`).

Each runs ask/tell and evaluates through the same `TableProblem` as our engine, with the same
noise: an evaluation's recorded seed derives from the run seed and the configuration. NGOpt
may ask for a configuration again (it re-evaluates under noise); each ask counts as an
evaluation, and a repeat reads the table at the next recorded seed. A run stops after
`evaluations` asks or when the evaluations' recorded training times sum to `cost`.
"""
from __future__ import annotations

import logging
import tempfile
from typing import Iterator

from pipeline.search import IntRange, Result, Task, derive_seed, genome_key

PEERS = ("smac", "ngopt")


def _task(genome: dict, seed: int, repeat: int) -> Task:
    key = genome_key(genome)
    return Task(key, genome, 200, derive_seed(seed, key, 200) + repeat)


def _stop(results: list[Result], evaluations: int, cost: float) -> bool:
    return len(results) >= evaluations or (cost > 0 and sum(r.cost for r in results) >= cost)


def smac_search(problem, seed: int, evaluations: int, cost: float = 0.0) -> list[Result]:
    from ConfigSpace import Categorical, ConfigurationSpace, Integer
    from smac import HyperparameterOptimizationFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    space = ConfigurationSpace(seed=seed)
    for name, gene in problem.space.genes:
        space.add(Integer(name, (gene.low, gene.high)) if isinstance(gene, IntRange) else Categorical(name, list(gene.options)))
    trials = evaluations if not cost else 100 * evaluations
    with tempfile.TemporaryDirectory() as folder:
        scenario = Scenario(space, deterministic=True, n_trials=trials, seed=seed, output_directory=folder)
        smac = HyperparameterOptimizationFacade(scenario, target_function=lambda config, seed=0: 0.0, overwrite=True,
                                               logging_level=logging.ERROR)
        results: list[Result] = []
        while not _stop(results, evaluations, cost):
            info = smac.ask()
            result = problem.evaluate(_task(dict(info.config), seed, 0))
            smac.tell(info, TrialValue(cost=-result.score, time=result.cost))
            results.append(result)
    return results


def ngopt_search(problem, seed: int, evaluations: int, cost: float = 0.0) -> list[Result]:
    import nevergrad as ng

    parametrization = ng.p.Dict(**{
        name: ng.p.TransitionChoice(list(range(gene.low, gene.high + 1))) if isinstance(gene, IntRange)
        else ng.p.Choice(list(gene.options)) for name, gene in problem.space.genes})
    parametrization.random_state.seed(seed)
    optimizer = ng.optimizers.NGOpt(parametrization=parametrization, budget=evaluations, num_workers=1)
    results: list[Result] = []
    asked: dict[str, int] = {}
    while not _stop(results, evaluations if not cost else 100 * evaluations, cost):
        candidate = optimizer.ask()
        genome = dict(candidate.value)
        repeat = asked.get(genome_key(genome), 0)
        asked[genome_key(genome)] = repeat + 1
        result = problem.evaluate(_task(genome, seed, repeat))
        optimizer.tell(candidate, -result.score)
        results.append(result)
    return results


def peer_search(name: str, problem, seed: int, evaluations: int, cost: float = 0.0) -> list[Result]:
    return {"smac": smac_search, "ngopt": ngopt_search}[name](problem, seed, evaluations, cost)


def installed() -> Iterator[str]:
    """The peers whose packages import here."""
    for name, module in (("smac", "smac"), ("ngopt", "nevergrad")):
        try:
            __import__(module)
        except ImportError:
            continue
        yield name
