"""A search space as data: one small value object per gene, and conditions between genes.

Each gene is an `IntRange`, a `FloatRange` (optionally log-scaled) or a `Choice`, with
`sample`, `mutate` and `contains`, in the spirit of Optuna's distributions. A `Space` is an
ordered tuple of named genes plus conditions ("`momentum` only matters when `optimizer` is
one of ..."), so mutation spends itself on genes that change something. A genome is a plain
dict gene -> value; its identity (`genome_key`) is its JSON, taken after the problem's
`repair`, which is where a problem resets genes that have no effect.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def mutate(self, value: int, rng: random.Random) -> int:
        if self.low == self.high:
            return self.low
        step = max(1.0, (self.high - self.low) / 4)
        moved = min(self.high, max(self.low, value + int(round(rng.gauss(0.0, step)))))
        if moved == value:  # a mutation always moves: one step, inwards at a bound
            moved = value + (rng.choice((-1, 1)) if self.low < value < self.high else 1 if value == self.low else -1)
        return moved

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    @property
    def pinned(self) -> bool:
        return self.low == self.high


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False

    def _to_unit(self, value: float) -> float:
        return math.log(value) if self.log else value

    def _from_unit(self, value: float) -> float:
        return math.exp(value) if self.log else value

    def sample(self, rng: random.Random) -> float:
        a, b = self._to_unit(self.low), self._to_unit(self.high)
        return self._clip(self._from_unit(rng.uniform(a, b)))

    def mutate(self, value: float, rng: random.Random) -> float:
        a, b = self._to_unit(self.low), self._to_unit(self.high)
        moved = self._to_unit(value) + rng.gauss(0.0, (b - a) / 6)
        return self._clip(self._from_unit(min(b, max(a, moved))))

    def _clip(self, value: float) -> float:
        # Round to 6 significant digits so best.yaml stays readable and round-trips exactly.
        value = float(f"{value:.6g}")
        return min(self.high, max(self.low, value))

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def values(self) -> None:
        return None

    @property
    def pinned(self) -> bool:
        return self.low == self.high


@dataclass(frozen=True)
class Choice:
    options: tuple

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.options)

    def mutate(self, value: Any, rng: random.Random) -> Any:
        others = [o for o in self.options if o != value]
        return rng.choice(others) if others else value

    def contains(self, value: Any) -> bool:
        return any(value == o and type(value) is type(o) for o in self.options)

    def values(self) -> list:
        return list(self.options)

    @property
    def pinned(self) -> bool:
        return len(self.options) == 1


Gene = IntRange | FloatRange | Choice


def describe(gene: Gene) -> str:
    """A gene as a person writes it: `16..96`, `0.0001..0.1 log`, `[batch, group]`."""
    if isinstance(gene, Choice):
        return "[" + ", ".join(str(option).lower() if isinstance(option, bool) else str(option)
                               for option in gene.options) + "]"
    return f"{gene.low:g}..{gene.high:g}" + (" log" if isinstance(gene, FloatRange) and gene.log else "")


@dataclass(frozen=True)
class Space:
    """Ordered genes, and the conditions under which a gene is active (gene -> (parent gene,
    the parent values that activate it)); a gene without a condition is always active."""

    genes: tuple[tuple[str, Gene], ...]
    conditions: tuple[tuple[str, str, frozenset], ...] = ()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.genes]

    def __getitem__(self, name: str) -> Gene:
        return dict(self.genes)[name]

    def as_dict(self) -> dict[str, Gene]:
        return dict(self.genes)

    def is_active(self, name: str, genome: Mapping) -> bool:
        for gene, parent, values in self.conditions:
            if gene == name and genome[parent] not in values:
                return False
        return True

    def sample(self, rng: random.Random) -> dict:
        return {name: gene.sample(rng) for name, gene in self.genes}

    def mutate(self, genome: Mapping, rng: random.Random, indpb: float) -> dict:
        """Each free, active gene mutates with probability `indpb`; at least one always
        does, so a mutant is never a silent copy."""
        out = dict(genome)
        free = [name for name, gene in self.genes if not gene.pinned and self.is_active(name, genome)]
        changed = False
        for name in free:
            if rng.random() < indpb:
                out[name] = self[name].mutate(out[name], rng)
                changed = True
        if free and not changed:
            name = rng.choice(free)
            out[name] = self[name].mutate(out[name], rng)
        return out

    def to_list(self, genome: Mapping) -> list:
        """The genome as a list in gene order (what DEAP's operators work on)."""
        return [genome[name] for name in self.names]

    def from_list(self, values) -> dict:
        return dict(zip(self.names, values))

    def contains(self, genome: Mapping) -> bool:
        return set(genome) == set(self.names) and all(self[name].contains(genome[name]) for name in self.names)

    def neighbours(self, genome: Mapping, rng: random.Random) -> list[dict]:
        """Genomes one step away: each free, active gene changed alone (every other choice;
        the next integer up and down; one Gaussian step of a real-valued gene)."""
        out = []
        for name, gene in self.genes:
            if gene.pinned or not self.is_active(name, genome):
                continue
            value = genome[name]
            if isinstance(gene, Choice):
                steps = [option for option in gene.options if option != value]
            elif isinstance(gene, IntRange):
                steps = [v for v in (value - 1, value + 1) if gene.low <= v <= gene.high]
            else:
                steps = [gene.mutate(value, rng)]
            out.extend({**genome, name: step} for step in steps)
        return out

    def encode(self, genome: Mapping) -> list[float]:
        """The genome as numbers for a surrogate model: one-hot choices, ranges scaled to
        [0, 1] (on a log scale where the gene is log-scaled); pinned genes left out."""
        out: list[float] = []
        for name, gene in self.genes:
            if gene.pinned:
                continue
            value = genome[name]
            if isinstance(gene, Choice):
                out.extend(1.0 if value == option and type(value) is type(option) else 0.0 for option in gene.options)
            elif isinstance(gene, FloatRange) and gene.log:
                out.append((math.log(value) - math.log(gene.low)) / (math.log(gene.high) - math.log(gene.low)))
            else:
                out.append((value - gene.low) / (gene.high - gene.low))
        return out

    def project(self, genome: Mapping) -> dict:
        """The nearest genome of this space (a warm start from a search over another
        space): numbers clipped into their range, a choice the space does not offer (or a
        missing gene) replaced by the gene's first value."""
        out = {}
        for name, gene in self.genes:
            value = genome.get(name)
            if gene.contains(value):
                out[name] = value
            elif isinstance(gene, Choice):
                out[name] = gene.options[0]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                clipped = min(gene.high, max(gene.low, value))
                out[name] = int(round(clipped)) if isinstance(gene, IntRange) else float(clipped)
            else:
                out[name] = gene.low
        return out


def genome_key(genome: Mapping) -> str:
    """A genome's identity: its JSON with sorted keys (taken after the problem's repair)."""
    return json.dumps(dict(genome), sort_keys=True)


def derive_seed(run_seed: int, key: str, budget: int | None = None) -> int:
    """A candidate's training seed from the run seed, its key and its budget, so a result
    never depends on evaluation order, worker count or backend."""
    return int(hashlib.sha256(f"{run_seed}|{key}|{budget}".encode()).hexdigest()[:8], 16)
