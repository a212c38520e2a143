"""Search strategies: what to try next, given what was learned. `STRATEGIES` maps each
`search.algorithm` name to its class; every class takes (space, settings, seed, repair)."""
from pipeline.search.strategies.aging import AgingEvolution
from pipeline.search.strategies.base import Strategy
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
    return STRATEGIES[settings.algorithm](space, settings, seed, repair)
