"""The one entry point to the engine: a problem, settings and a seed in; an outcome out.

The `search` stage, the benchmarks and the tests all call `run_search`, so there is one
place where the strategy and the backend are chosen (by name, from their registries), the
candidate store is opened, warm-start genomes are queued, the backend is closed, and
progress is shown.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from pipeline.search.backends import make_backend
from pipeline.search.loop import GenerationRecord, SearchOutcome, search_loop
from pipeline.search.problem import Problem, Result
from pipeline.search.progress import SearchProgress
from pipeline.search.record import identity_of
from pipeline.search.settings import RUNTIME_KEYS
from pipeline.search.store import ResultStore
from pipeline.search.strategies import make_strategy


def run_search(
    problem: Problem,
    settings,
    seed: int,
    *,
    store_root: Path | None = None,
    record_path: Path | None = None,
    warm_start: Sequence[dict] = (),
    on_result: Callable[[int, int, Result, bool], None] | None = None,
    on_generation: Callable[[GenerationRecord], None] | None = None,
    progress: bool = False,
    backend=None,
    log: Callable[[str], None] = print,
) -> SearchOutcome:
    """Search `problem.space` with `settings.algorithm` on `settings.backend` (or the given
    backend, which the caller then closes). With `store_root`, every result is kept in the
    candidate store there and every evaluation found there is reused (the problem must
    have a `fingerprint`); `record_path` keeps the search record that explains what a new
    search continues; `warm_start` genomes (projected into the space) are proposed first."""
    if not isinstance(problem, Problem):
        raise TypeError(f"run_search needs a pipeline.search.Problem, got {type(problem).__name__}")
    strategy = make_strategy(problem.space, settings, seed, problem.repair)
    strategy.enqueue([problem.space.project(genome) for genome in warm_start])
    store = ResultStore(store_root, problem.fingerprint) if store_root else None
    identity = identity_of(problem, settings, seed, RUNTIME_KEYS)
    owned = backend is None
    backend = backend or make_backend(problem, settings)
    bar = SearchProgress(settings, strategy.last_generation()) if progress else None

    def result_seen(generation, rung, result, reused):
        if bar:
            bar.candidate(result, reused)
        if on_result:
            on_result(generation, rung, result, reused)

    def generation_done(record):
        if bar:
            bar.generation(record)
        if on_generation:
            on_generation(record)

    try:
        return search_loop(strategy, settings, seed, backend.map, store=store, record_path=record_path, identity=identity,
                           on_result=result_seen, on_generation=generation_done, log=log, cost_of=problem.cost_of,
                           deterministic=problem.deterministic)
    finally:
        if bar:
            bar.close()
        if owned:
            backend.close()
