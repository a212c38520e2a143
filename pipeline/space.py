"""The search space as data: one small value object per gene.

Each gene is an `IntRange`, a `FloatRange` (optionally log-scaled) or a `Choice`, with
`sample`, `mutate` and `contains`, in the spirit of Optuna's distributions. `GENE_CATALOG`
says which genes exist, what values each may take at all and what it is pinned to when
`params.yaml` leaves it out; `build_space` turns the user's `space:` section into a
`SearchSpace` after checking it against the catalog, so a typo fails before any work starts.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from pipeline import tables
from pipeline.errors import ConfigError


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
        moved = value + int(round(rng.gauss(0.0, step))) or value + rng.choice((-1, 1))
        return min(self.high, max(self.low, moved))

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


@dataclass(frozen=True)
class GeneDef:
    """What a gene may be at all: its value type, its bounds or names, and its default."""

    kind: str  # "int", "float", "bool" or "name"
    default: Any
    low: float | None = None
    high: float | None = None
    names: tuple = ()
    why: str = ""

    def describe(self) -> str:
        if self.kind == "name":
            return "a list of names from " + ", ".join(map(str, self.names))
        if self.kind == "bool":
            return "a list of true/false"
        noun = "integers" if self.kind == "int" else "numbers"
        return f"a list of {noun} or {{low, high{', log' if self.kind == 'float' else ''}}} within [{self.low}, {self.high}]"


GENE_CATALOG: dict[str, GeneDef] = {
    # architecture
    "stages": GeneDef("int", 2, 1, 6, why="number of resolution stages; each ends by halving the size"),
    "blocks_per_stage": GeneDef("int", 1, 1, 4, why="conv blocks per stage"),
    "width": GeneDef("int", 32, 4, 512, why="channels of the first stage; each later stage doubles it"),
    "kernel": GeneDef("int", 3, 1, 7, names=(1, 3, 5, 7), why="conv kernel size"),
    "stride": GeneDef("int", 1, 1, 2, names=(1, 2), why="stride of the stem conv; 2 halves large inputs early"),
    "padding": GeneDef("name", "same", names=("same", "valid"), why="`same` keeps the size, `valid` shrinks it by kernel-1"),
    "norm": GeneDef("name", "batch", names=tuple(tables.NORMS), why="normalization after each conv, before the activation"),
    "activation": GeneDef("name", "relu", names=tuple(tables.ACTIVATIONS)),
    "pooling": GeneDef("name", "max", names=tuple(tables.POOLING), why="how each stage halves the size"),
    "global_pool": GeneDef("name", "avg", names=tuple(tables.HEADS), why="how the head reduces the last feature map"),
    "residual": GeneDef("bool", False, names=(True, False)),
    "attention": GeneDef("name", "none", names=tuple(tables.ATTENTION)),
    "dropout": GeneDef("float", 0.0, 0.0, 0.9),
    # training recipe
    "optimizer": GeneDef("name", "adamw", names=tuple(tables.OPTIMIZERS)),
    "lr": GeneDef("float", 1e-3, 1e-6, 10.0),
    "momentum": GeneDef("float", 0.9, 0.0, 0.999, why="used by sgd_momentum, sgd_nesterov and rmsprop"),
    "weight_decay": GeneDef("float", 5e-4, 0.0, 1.0),
    "batch_size": GeneDef("int", 64, 1, 8192),
    "scheduler": GeneDef("name", "none", names=tuple(tables.SCHEDULERS)),
    "lambda_schedule": GeneDef("name", "warmup_linear", names=tuple(tables.LAMBDA_SCHEDULES), why="used by scheduler `lambda`"),
    "loss": GeneDef("name", "cross_entropy", names=tuple(tables.LOSSES)),
    "label_smoothing": GeneDef("float", 0.0, 0.0, 0.5, why="used by loss `cross_entropy`"),
    "augment": GeneDef("name", "none", names=tuple(tables.AUGMENTATIONS)),
}

#: Genes that only matter for some values of another gene; elsewhere they are reset to their
#: default so that two genomes that train identically are one genome (memoized once).
CONDITIONAL_GENES: dict[str, tuple[str, frozenset]] = {
    "momentum": ("optimizer", frozenset(tables.OPTIMIZERS_WITH_MOMENTUM)),
    "lambda_schedule": ("scheduler", frozenset({"lambda"})),
    "label_smoothing": ("loss", frozenset({"cross_entropy"})),
}


@dataclass(frozen=True)
class SearchSpace:
    """An ordered mapping gene name -> gene; every catalog gene is present (absent = pinned)."""

    genes: tuple[tuple[str, Gene], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.genes]

    def __getitem__(self, name: str) -> Gene:
        return dict(self.genes)[name]

    def as_dict(self) -> dict[str, Gene]:
        return dict(self.genes)


def _describe_value(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def check_value(key: str, definition: GeneDef, value: Any) -> Any:
    if definition.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_describe_value(value)}")
        return value
    if definition.kind == "name":
        if isinstance(value, str) and value in tables.REFUSED_LOSSES and key.split(".")[-1] == "loss":
            raise ConfigError(f"{key}: '{value}' is refused: {tables.REFUSED_LOSSES[value]}")
        if value not in definition.names or isinstance(value, bool):
            raise ConfigError(
                f"{key}: unknown choice {_describe_value(value)}; allowed: {', '.join(map(str, definition.names))}"
            )
        return value
    if definition.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_describe_value(value)}")
        if definition.names and value not in definition.names:
            raise ConfigError(f"{key}: {value} is not allowed; allowed: {', '.join(map(str, definition.names))}")
    else:
        value = _as_float(key, value)
    if not definition.low <= value <= definition.high:
        raise ConfigError(f"{key}: {value} is out of range; allowed [{definition.low}, {definition.high}]")
    return value


def _as_float(key: str, value: Any) -> float:
    # PyYAML reads `1e-4` (no dot) as a string; accept it rather than surprise the user.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}: expected a number, got {_describe_value(value)}")
    return float(value)


def build_gene(key: str, definition: GeneDef, raw: Any) -> Gene:
    """Turn one `space:` entry into a gene, or raise a one-line `ConfigError`."""
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{key}: empty list of choices; expected {definition.describe()}")
        values = [check_value(key, definition, v) for v in raw]
        unique = list(dict.fromkeys(values))
        return Choice(tuple(unique))
    if isinstance(raw, dict) and definition.kind in ("int", "float"):
        allowed = {"low", "high", "log"}
        unknown = sorted(set(raw) - allowed, key=str)
        if unknown:
            raise ConfigError(f"{key}: unknown key '{unknown[0]}'; expected {{low, high}} or {{low, high, log}}")
        for bound in ("low", "high"):
            if bound not in raw:
                raise ConfigError(f"{key}: missing '{bound}'; expected {definition.describe()}")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{key}.log: expected true or false, got {_describe_value(log)}")
        if definition.names:
            raise ConfigError(f"{key}: expected a list of choices from {', '.join(map(str, definition.names))}")
        low = check_value(f"{key}.low", definition, raw["low"])
        high = check_value(f"{key}.high", definition, raw["high"])
        if low > high:
            raise ConfigError(f"{key}: low ({low}) is greater than high ({high})")
        if definition.kind == "int":
            if log:
                raise ConfigError(f"{key}.log: log scale is only for real-valued genes")
            return IntRange(low, high)
        if log and low <= 0:
            raise ConfigError(f"{key}.low: a log-scaled range needs low > 0, got {low}")
        return FloatRange(low, high, log)
    raise ConfigError(f"{key}: expected {definition.describe()}, got {_describe_value(raw)}")


def build_space(raw: Any) -> SearchSpace:
    """Build the search space from the `space:` section (a mapping gene -> choices/range)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"space: expected a mapping of gene names, got {_describe_value(raw)}")
    for name in raw:
        if name not in GENE_CATALOG:
            raise ConfigError(f"space.{name}: unknown gene; known genes: {', '.join(GENE_CATALOG)}")
    genes = []
    for name, definition in GENE_CATALOG.items():
        if name in raw:
            genes.append((name, build_gene(f"space.{name}", definition, raw[name])))
        else:
            genes.append((name, Choice((definition.default,))))
    return SearchSpace(tuple(genes))
