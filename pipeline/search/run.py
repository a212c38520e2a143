"""The one entry point to the engine: a problem, settings and a seed in; an outcome out.

The `search` stage, the benchmarks and the tests all call `run_search`, so there is one
place where the strategy and the backend are chosen (by name, from their registries), the
backend is closed, and progress is shown.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipeline.search.backends import make_backend
from pipeline.search.loop import GenerationRecord, SearchOutcome, search_loop
from pipeline.search.problem import Problem, Result
from pipeline.search.progress import SearchProgress
from pipeline.search.strategies import make_strategy


def run_search(
    problem: Problem,
    settings,
    seed: int,
    *,
    params_hash: str = "",
    checkpoint_path: Path | None = None,
    on_result: Callable[[int, int, Result], None] | None = None,
    on_generation: Callable[[GenerationRecord], None] | None = None,
    progress: bool = False,
    backend=None,
    log: Callable[[str], None] = print,
) -> SearchOutcome:
    """Search `problem.space` with `settings.algorithm` on `settings.backend` (or the given
    backend, which the caller then closes), resuming from `checkpoint_path` when it holds a
    checkpoint made under the same `params_hash`."""
    strategy = make_strategy(problem.space, settings, seed, problem.repair)
    owned = backend is None
    backend = backend or make_backend(problem, settings)
    bar = SearchProgress(settings, strategy.last_generation()) if progress else None

    def result_seen(generation, rung, result):
        if bar:
            bar.candidate(generation, rung, result)
        if on_result:
            on_result(generation, rung, result)

    def generation_done(record):
        if bar:
            bar.generation(record)
        if on_generation:
            on_generation(record)

    try:
        return search_loop(strategy, settings, seed, backend.map, params_hash=params_hash,
                           checkpoint_path=checkpoint_path, on_result=result_seen, on_generation=generation_done, log=log)
    finally:
        if bar:
            bar.close()
        if owned:
            backend.close()
