"""The surrogate model: a tree ensemble over encoded genomes that predicts a standing's
rank, never its raw score.

Targets are the ranks of the standings (`Scored.sort_key`: failures lowest, ties
averaged) mapped to standard normal quantiles, so the model is the same for accuracies in
[0, 1], negative errors spanning seven orders of magnitude, or anything else that orders
the candidates. Predictions are per tree; their mean and spread give the expected
improvement over the best quantile seen. Trees are predicted through their low-level
`tree_` (the estimator's own `predict` re-validates its input on every call, which would
dominate a search that screens thousands of candidates).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.search.scored import Scored
from pipeline.search.space import Space


def normal_quantiles(standings: Sequence[Scored]) -> np.ndarray:
    """Each standing's rank (0 = worst, ties averaged) as a standard normal quantile."""
    from scipy.stats import norm, rankdata

    keys = [s.sort_key() for s in standings]
    order = {key: position for position, key in enumerate(sorted(set(keys)))}
    ranks = rankdata([order[key] for key in keys], method="average")
    return norm.ppf((ranks - 0.5) / len(keys))


class Surrogate:
    def __init__(self, space: Space, trees, best: float):
        self.space, self.trees, self.best = space, trees, best

    @classmethod
    def fitted(cls, space: Space, standings: Sequence[Scored], trees: int, seed: int) -> "Surrogate":
        from sklearn.ensemble import ExtraTreesRegressor

        x = np.array([space.encode(s.genome) for s in standings], dtype=np.float32)
        y = normal_quantiles(standings)
        forest = ExtraTreesRegressor(n_estimators=trees, bootstrap=True, random_state=seed).fit(x, y)
        return cls(space, [tree.tree_ for tree in forest.estimators_], float(y.max()))

    def per_tree(self, genomes: Sequence[dict]) -> np.ndarray:
        """(trees, genomes) predictions."""
        x = np.ascontiguousarray(np.array([self.space.encode(g) for g in genomes], dtype=np.float32))
        return np.stack([tree.predict(x)[:, 0] for tree in self.trees])

    def mean(self, genomes: Sequence[dict]) -> np.ndarray:
        return self.per_tree(genomes).mean(axis=0)

    def expected_improvement(self, genomes: Sequence[dict]) -> np.ndarray:
        """E[max(0, quantile - best quantile)] under a normal with the trees' mean and spread."""
        from scipy.stats import norm

        predictions = self.per_tree(genomes)
        mean, spread = predictions.mean(axis=0), np.maximum(predictions.std(axis=0), 1e-9)
        gain = mean - self.best
        z = gain / spread
        return gain * norm.cdf(z) + spread * norm.pdf(z)


class CostModel:
    """Predicted cost (the problem's unit, `Result.spent`) of a genome: a tree ensemble on
    the log of the costs seen, so a cost model spans cheap and expensive candidates alike
    (Snoek et al. 2012's log-duration model, SMAC's EIPS)."""

    def __init__(self, space: Space, trees, median: float):
        self.space, self.trees, self.median = space, trees, median

    @classmethod
    def fitted(cls, space: Space, standings: Sequence[Scored], trees: int, seed: int) -> "CostModel":
        from sklearn.ensemble import ExtraTreesRegressor

        x = np.array([space.encode(s.genome) for s in standings], dtype=np.float32)
        y = np.log(np.maximum([s.result.spent for s in standings], 1e-12))
        forest = ExtraTreesRegressor(n_estimators=trees, bootstrap=True, random_state=seed).fit(x, y)
        return cls(space, [tree.tree_ for tree in forest.estimators_], float(np.exp(np.median(y))))

    def predict(self, genomes: Sequence[dict]) -> np.ndarray:
        x = np.ascontiguousarray(np.array([self.space.encode(g) for g in genomes], dtype=np.float32))
        return np.exp(np.mean([tree.predict(x)[:, 0] for tree in self.trees], axis=0))
