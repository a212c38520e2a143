"""The generic search engine: it searches any `Problem` (a space, a repair, an evaluation)
and knows nothing of what is evaluated. `run_search` is its one entry point.

    space.py        genes (IntRange, FloatRange, Choice), the Space, genome keys and seeds
    problem.py      the Problem base class, Task and Result
    settings.py     SearchSettings: the `search:` section the engine understands
    strategies/     the Strategy base and its registry: ga, nsga2, aging (DEAP), surrogate
                    (DEAP + a rank-based tree ensemble), random, grid, tpe (Optuna)
    evaluator.py    memo, candidate store and successive halving over a swappable map
    rungs.py        training states of candidates racing through continuing rungs
    budget.py       evaluations, epochs, cost, seconds, patience
    scored.py       a candidate's standing (failures last) and the archive of standings
    store.py        the candidate store shared by every search of a project
    record.py       what the last search was, and what changed since
    loop.py         propose, evaluate, observe, record
    backends.py     serial, processes (and ray_backend.py): where candidates run
    progress.py     the tqdm bar and per-generation lines
    run.py          run_search: strategy + backend + loop
"""
from pipeline.search.loop import GenerationRecord, SearchOutcome
from pipeline.search.problem import Problem, Result, Task
from pipeline.search.run import run_search
from pipeline.search.scored import Scored
from pipeline.search.settings import FidelitySettings, SearchSettings
from pipeline.search.space import Choice, FloatRange, IntRange, Space, derive_seed, genome_key

__all__ = [
    "Choice", "FidelitySettings", "FloatRange", "GenerationRecord", "IntRange", "Problem", "Result", "Scored",
    "SearchOutcome", "SearchSettings", "Space", "Task", "derive_seed", "genome_key", "run_search",
]
