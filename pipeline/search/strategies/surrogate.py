"""Surrogate-assisted evolution: aging evolution whose children are chosen by a model.

After a first generation of random samples, each proposal is one of two kinds:

- screened (most of them): a tree ensemble (scikit-learn's extra trees, as SMAC's random
  forest) is fitted on every standing in the archive, encoded by `Space.encode`, against
  the *ranks* of the standings mapped to normal quantiles (a Gaussian copula, as HEBO's
  output warping and SMAC's log transform do): the model never sees the score's scale or
  sign, so a handful of diverged configurations cannot dominate it, and a failure is
  simply the lowest rank. Candidates are the neighbours of the best genomes (every gene
  changed alone), mutants of tournament winners of the aging population (DEAP's
  `selTournament`) and random samples; a short hill climb over one-gene steps improves
  the best of them; the one the model values most is proposed: by default the highest
  predicted quantile (the trees' mean: exploitation, with exploration left to the random
  proposals, which measured better on the suite than expected improvement), or the
  expected improvement on the quantile scale (`ei`).
- cost-aware (`cost_weight` > 0, for budgets of cost or time rather than of evaluations):
  a second ensemble predicts the log of the cost from the costs seen, and the value is
  discounted by it: expected improvement per cost^w (Snoek et al. 2012's EIPS at w = 1),
  or the predicted quantile less w times the log of the predicted cost over the median
  cost seen.
- random (every 1/random_share-th proposal, counted, not drawn): an unscreened sample, so
  the search keeps exploring where the model is confidently wrong (SMAC interleaves about
  20%, BOHB a third).

Everything is drawn from the strategy's generator and the ensemble is seeded from it, so
the search is deterministic for a seed.
"""
from __future__ import annotations

import math
from typing import Annotated, Sequence

import numpy as np
from pydantic import Field

from pipeline.search.scored import Archive
from pipeline.search.space import genome_key
from pipeline.search.strategies.aging import AgingEvolution
from pipeline.search.strategies.surrogate_model import CostModel, Surrogate
from pipeline.validation import Between, Number, OneOf


class SurrogateEvolution(AgingEvolution):
    def __init__(self, *args,
                 random_share: Annotated[Number, Between(0.0, 1.0), Field(
                     description="share of proposals that are unscreened random samples")] = 0.2,
                 acquisition: Annotated[str, OneOf(("mean", "ei")), Field(
                     description="mean: the model's predicted quantile; ei: expected improvement on the "
                                 "quantile scale")] = "ei",
                 cost_weight: Annotated[Number, Between(0.0, 10.0), Field(
                     description="how much predicted cost discounts a candidate (0: not at all; ei: EI / cost^w; "
                                 "mean: quantile - w log(cost / median cost))")] = 0.0,
                 trees: Annotated[int, Between(1, 1000), Field(description="trees of the ensemble")] = 16,
                 elite: Annotated[int, Between(0, 1000), Field(
                     description="best genomes whose every neighbour is a candidate")] = 5,
                 mutants: Annotated[int, Between(0, 100_000), Field(
                     description="mutants of tournament winners screened per proposal")] = 20,
                 samples: Annotated[int, Between(0, 100_000), Field(
                     description="random samples screened per proposal")] = 50,
                 climb: Annotated[int, Between(0, 1000), Field(
                     description="hill-climbing steps from the best few candidates")] = 3,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.random_share, self.acquisition, self.cost_weight, self.trees = random_share, acquisition, cost_weight, trees
        self.elite, self.mutants_per_child, self.samples_per_child, self.climb = elite, mutants, samples, climb
        self.proposals = 0

    def is_random_slot(self) -> bool:
        """Every 1/random_share-th proposal (counted, so the share holds exactly)."""
        self.proposals += 1
        share = self.random_share
        return math.floor(self.proposals * share) > math.floor((self.proposals - 1) * share)

    def propose(self, generation: int, archive: Archive) -> list[dict]:
        if generation == 0 or len(archive.finished()) < 2:
            return self.first_generation(archive)
        slots = [self.is_random_slot() for _ in range(self.offspring)]
        screened = self.screened(slots.count(False), archive) if not all(slots) else []
        out = []
        for random_slot in slots:
            if random_slot or not screened:
                out.append(self.unseen(self.samples(), archive))
            else:
                out.append(screened.pop(0))
        return out

    def screened(self, count: int, archive: Archive) -> list[dict]:
        """The `count` unproposed candidates the model ranks highest (marked proposed)."""
        standings = archive.all()
        model = Surrogate.fitted(self.space, standings, self.trees, self.rng.randrange(2**31))
        finished = [s for s in standings if not s.failed]
        if self.cost_weight:
            model.cost = CostModel.fitted(self.space, finished, self.trees, self.rng.randrange(2**31))
        pool = self.candidates(count, archive)
        if not pool:
            return []
        self.rng.shuffle(pool)  # a tree model ties often: ties go to a random candidate, not the first gene's
        values = self.value(model, pool)
        pool, values = self.climbed(model, pool, values, archive)
        order = np.argsort(-values, kind="stable")[:count]
        chosen = [pool[i] for i in order]
        archive.mark_proposed(chosen)
        return chosen

    def value(self, model: Surrogate, genomes: Sequence[dict]) -> np.ndarray:
        """How much the model wants each genome trained (higher first)."""
        value = model.mean(genomes) if self.acquisition == "mean" else model.expected_improvement(genomes)
        if not self.cost_weight:
            return value
        cost = model.cost.predict(genomes)
        if self.acquisition == "ei":
            return value / cost**self.cost_weight
        return value - self.cost_weight * np.log(cost / model.cost.median)

    def candidates(self, count: int, archive: Archive) -> list[dict]:
        """Distinct, never proposed genomes: the elite's neighbours, mutants of tournament
        winners, random samples."""
        elite = [s.genome for s in archive.best(self.elite) if not s.failed]
        local = [self.repair(n) for genome in elite for n in self.space.neighbours(genome, self.rng)]
        mutants = [self.mutate(p, self.gene_mutation) for p in self.parents(self.mutants_per_child * count)] if self.ages else []
        fresh = [self.sample() for _ in range(self.samples_per_child * count)]
        return distinct_unproposed(local + mutants + fresh, archive)

    def climbed(self, model: Surrogate, pool: list[dict], values: np.ndarray, archive: Archive):
        """The pool plus where a greedy climb over one-gene steps leads from its best few
        members (each step to the best unproposed neighbour, while the value rises)."""
        pool, values = list(pool), list(values)
        for start in np.argsort(-np.asarray(values), kind="stable")[: max(1, self.elite)] if self.climb else []:
            genome, value = pool[start], values[start]
            for _ in range(self.climb):
                steps = distinct_unproposed([self.repair(n) for n in self.space.neighbours(genome, self.rng)], archive)
                if not steps:
                    break
                self.rng.shuffle(steps)
                step_values = self.value(model, steps)
                best = int(np.argmax(step_values))
                if step_values[best] <= value:
                    break
                genome, value = steps[best], float(step_values[best])
                pool.append(genome)
                values.append(value)
        keys, unique_pool, unique_values = set(), [], []
        for genome, value in zip(pool, values):
            key = genome_key(genome)
            if key not in keys:
                keys.add(key)
                unique_pool.append(genome)
                unique_values.append(value)
        return unique_pool, np.asarray(unique_values)


def distinct_unproposed(genomes: Sequence[dict], archive: Archive) -> list[dict]:
    out: dict[str, dict] = {}
    for genome in genomes:
        key = genome_key(genome)
        if key not in archive.proposed:
            out.setdefault(key, genome)
    return list(out.values())
