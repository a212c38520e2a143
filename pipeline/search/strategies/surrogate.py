"""Surrogate-assisted evolution: aging evolution whose children are screened by a model.

Each generation draws many candidate children (mutants of tournament winners, as aging
evolution does, mutants of the best genomes seen so far, and a few random samples), scores
them with a scikit-learn tree ensemble fitted on every genome evaluated so far (encoded by
`Space.encode`), and trains only the `offspring` most promising: the highest mean plus
`kappa` times the spread across the trees (an upper confidence bound, so candidates the
model knows little about still get tried). This is the predictor pre-screening of mutants
that makes evolution sample-efficient (BANANAS, NPENAS); the ensemble is seeded from the
run seed and the generation, so the search stays deterministic.
"""
from __future__ import annotations

import random

import numpy as np

from pipeline.search.scored import Scored
from pipeline.search.space import genome_key
from pipeline.search.strategies.aging import AgingEvolution


class SurrogateEvolution(AgingEvolution):
    pool_factor = 10  # candidates screened per child trained
    elite = 3  # best genomes whose every neighbour joins the pool
    random_share = 0.1  # share of the pool drawn at random
    kappa = 1.0  # weight of the ensemble's spread in the acquisition
    trees = 64

    def __init__(self, space, settings, seed, repair):
        super().__init__(space, settings, seed, repair)
        self.archive: dict[str, Scored] = {}

    def candidates(self, count: int) -> list[dict]:
        """Distinct, never proposed genomes: every neighbour of the elite (local search),
        mutants of tournament winners (aging evolution), and random samples."""
        elite = sorted(self.archive.values(), key=Scored.sort_key, reverse=True)[: self.elite]
        local = [self.repair(n) for s in elite for n in self.space.neighbours(s.genome, random)]
        mutants = [self.mutate(parent) for parent in self.parents(count)]
        fresh = [self.sample() for _ in range(int(count * self.random_share))]
        pool: dict[str, dict] = {}
        for genome in local + mutants + fresh:
            key = genome_key(genome)
            if key not in self.seen:
                pool.setdefault(key, genome)
        return list(pool.values())

    def acquisition(self, genomes: list[dict], generation: int) -> np.ndarray:
        from sklearn.ensemble import ExtraTreesRegressor

        known = list(self.archive.values())
        x = np.array([self.space.encode(s.genome) for s in known])
        y = np.array([s.score for s in known])
        model = ExtraTreesRegressor(n_estimators=self.trees, min_samples_leaf=1, bootstrap=True,
                                    random_state=(self.seed * 7919 + generation) % 2**31)
        model.fit(x, y)
        grid = np.array([self.space.encode(g) for g in genomes])
        per_tree = np.stack([tree.predict(grid) for tree in model.estimators_])
        return per_tree.mean(axis=0) + self.kappa * per_tree.std(axis=0)

    def propose(self, generation: int) -> list[dict]:
        if generation == 0 or len(self.archive) < 2:
            return self.fresh_samples(self.settings.population)
        pool = self.candidates(self.offspring * self.pool_factor)
        if len(pool) <= self.offspring:
            chosen = pool
        else:
            ranking = np.argsort(-self.acquisition(pool, generation), kind="stable")
            chosen = [pool[i] for i in ranking[: self.offspring]]
        for genome in chosen:
            self.seen.add(genome_key(genome))
        return chosen or self.fresh_samples(self.offspring)

    def observe(self, generation, proposals, scored):
        super().observe(generation, proposals, scored)
        for entry in scored:
            if entry is not None:
                key = genome_key(entry.genome)
                if key not in self.archive or entry.sort_key() > self.archive[key].sort_key():
                    self.archive[key] = entry
