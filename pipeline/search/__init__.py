"""The generic search engine: it searches any `Problem` (a space, a repair, an evaluation)
and knows nothing of what is evaluated. `run_search` is its one entry point.

    space.py        genes (IntRange, FloatRange, Choice), the Space, genome keys and seeds
    problem.py      the Problem interface, Task and Result
    settings.py     SearchSettings: the `search:` section the engine understands
    strategies/     ga, nsga2 (DEAP), random, grid, tpe (Optuna): what to try next
    evaluator.py    memo and successive halving over a swappable map
    budget.py       evaluations, epochs, seconds, patience
    scored.py       a candidate's standing; the hall of fame
    checkpoint.py   the JSON checkpoint written after every generation
    loop.py         propose, evaluate, observe, checkpoint
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
