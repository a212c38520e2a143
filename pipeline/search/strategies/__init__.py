"""Search strategies: what to try next, given the archive of what was scored. `STRATEGIES`
maps each `search.algorithm` name to its class (`base.Strategy` says how to add one)."""
from pipeline.search.strategies.aging import AgingEvolution
from pipeline.search.strategies.base import Strategy, options_model, strategy_rng
from pipeline.search.strategies.genetic import GeneticStrategy, NSGA2Strategy
from pipeline.search.strategies.grid import GridStrategy
from pipeline.search.strategies.random_search import RandomStrategy
from pipeline.search.strategies.surrogate import SurrogateEvolution
from pipeline.search.strategies.tpe import TPEStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    "ga": GeneticStrategy,
    "aging": AgingEvolution,
    "surrogate": SurrogateEvolution,
    "nsga2": NSGA2Strategy,
    "random": RandomStrategy,
    "grid": GridStrategy,
    "tpe": TPEStrategy,
}


def make_strategy(space, settings, seed: int, repair) -> Strategy:
    """The strategy `settings.algorithm` names, with its knobs from `settings.options`."""
    cls = STRATEGIES[settings.algorithm]
    options = options_model(cls).model_validate(dict(settings.options)).model_dump()
    return cls(space, repair, strategy_rng(seed), population=settings.population,
               offspring=settings.proposals_per_generation,
               generations=settings.generations, objectives=settings.objectives, **options)
