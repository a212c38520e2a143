"""Which genes the CNN genome has: what values each may take at all, its default (what a
gene left out of `space:` is pinned to), and why it exists.

Names come from the builders' own tables (`NORMS`, `OPTIMIZERS`, `LOSSES`, ...), so adding
a table entry offers it and nothing can be offered that does not resolve. `gene_value_type`
and `space_entry_type` turn a `GeneDef` into the pydantic types that validate a best.yaml
value and a `space:` entry (and give params.yaml's JSON Schema its enums and bounds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from pipeline.nn.blocks import ACTIVATIONS, ATTENTION, HEADS, NORMS, POOLING
from pipeline.search.space import Choice, FloatRange, IntRange
from pipeline.train.augment import AUGMENTATIONS
from pipeline.train.losses import LOSSES, REFUSED_LOSSES
from pipeline.train.optim import LAMBDA_SCHEDULES, LR_SCALING, OPTIMIZERS, OPTIMIZERS_WITH_MOMENTUM, SCHEDULERS
from pipeline.validation import Between, Number, OneOf, Section, fail, listed


@dataclass(frozen=True)
class GeneDef:
    """What a gene may be at all: its value type, its bounds or names, and its default."""

    kind: str  # "int", "float", "bool" or "name"
    default: Any
    low: float | None = None
    high: float | None = None
    names: tuple = ()
    why: str = ""
    refused: tuple = ()  # (name, reason) pairs: known, never offered

    def describe(self) -> str:
        if self.kind == "name":
            return "a list of names from " + ", ".join(map(str, self.names))
        if self.kind == "bool":
            return "a list of true/false"
        if self.names:
            return "a list of choices from " + ", ".join(map(str, self.names))
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
    "norm": GeneDef("name", "batch", names=tuple(NORMS), why="normalization after each conv, before the activation"),
    "activation": GeneDef("name", "relu", names=tuple(ACTIVATIONS)),
    "pooling": GeneDef("name", "max", names=tuple(POOLING), why="how each stage halves the size"),
    "global_pool": GeneDef("name", "avg", names=tuple(HEADS), why="how the head reduces the last feature map"),
    "residual": GeneDef("bool", False, names=(True, False)),
    "attention": GeneDef("name", "none", names=tuple(ATTENTION)),
    "dropout": GeneDef("float", 0.0, 0.0, 0.9),
    "whiten": GeneDef("bool", False, names=(True, False),
                      why="a frozen 2x2 conv stem whose filters whiten the training images' patches (airbench)"),
    # training recipe
    "optimizer": GeneDef("name", "adamw", names=tuple(OPTIMIZERS)),
    "lr": GeneDef("float", 1e-3, 1e-6, 10.0),
    "lr_scaling": GeneDef("name", "none", names=tuple(LR_SCALING),
                          why="how the learning rate follows batch_size: lr x (batch/128) or x sqrt(batch/128)"),
    "momentum": GeneDef("float", 0.9, 0.0, 0.999, why="used by sgd_momentum, sgd_nesterov and rmsprop"),
    "weight_decay": GeneDef("float", 5e-4, 0.0, 1.0),
    "batch_size": GeneDef("int", 64, 1, 8192),
    "scheduler": GeneDef("name", "none", names=tuple(SCHEDULERS)),
    "lambda_schedule": GeneDef("name", "warmup_linear", names=tuple(LAMBDA_SCHEDULES), why="used by scheduler `lambda`"),
    "loss": GeneDef("name", "cross_entropy", names=tuple(LOSSES), refused=tuple(REFUSED_LOSSES.items())),
    "label_smoothing": GeneDef("float", 0.0, 0.0, 0.5, why="used by loss `cross_entropy`"),
    "augment": GeneDef("name", "none", names=tuple(AUGMENTATIONS)),
    "ema": GeneDef("float", 0.0, 0.0, 0.9999,
                   why="decay of an exponential moving average of the weights, which are evaluated and exported; 0 = off"),
    "tta": GeneDef("bool", False, names=(True, False),
                   why="evaluate and export the mean of the logits of each image and its mirror image"),
}

#: Genes that only matter for some values of another gene; elsewhere they are reset to their
#: default so that two genomes that train identically are one genome (memoized once).
CONDITIONAL_GENES: dict[str, tuple[str, frozenset]] = {
    "momentum": ("optimizer", frozenset(OPTIMIZERS_WITH_MOMENTUM)),
    "lambda_schedule": ("scheduler", frozenset({"lambda"})),
    "label_smoothing": ("loss", frozenset({"cross_entropy"})),
}


def gene_value_type(definition: GeneDef):
    """The pydantic type of one value of this gene (a best.yaml entry, a list item)."""
    if definition.kind == "bool":
        return bool
    if definition.kind == "name":
        return Annotated[str, OneOf(definition.names, definition.refused)]
    if definition.names:
        return Annotated[int, OneOf(definition.names)]
    base = int if definition.kind == "int" else Number
    return Annotated[base, Between(definition.low, definition.high)]


def _range_model(name: str, definition: GeneDef):
    """`{low, high[, log]}` for a numeric gene, checked against the gene's bounds."""
    value = gene_value_type(definition)

    class Range(Section):
        low: value
        high: value
        log: bool = Field(False, description="sample on a log scale (real-valued genes, low > 0)")

        @model_validator(mode="after")
        def _ordered(self):
            if self.low > self.high:
                raise fail(f"low ({self.low}) is greater than high ({self.high})")
            if self.log and definition.kind == "int":
                raise fail("log scale is only for real-valued genes", "log")
            if self.log and self.low <= 0:
                raise fail(f"a log-scaled range needs low > 0, got {self.low}", "low")
            return self

    Range.__name__ = Range.__qualname__ = f"{name}_range"
    return Range


def _as_gene(entry):
    if isinstance(entry, tuple):
        return Choice(entry)
    if isinstance(entry.low, int) and isinstance(entry.high, int) and not isinstance(entry.low, bool):
        return IntRange(entry.low, entry.high)
    return FloatRange(float(entry.low), float(entry.high), entry.log)


def space_entry_type(name: str, definition: GeneDef):
    """A `space:` entry: a list of choices, or (for numeric genes) a range; validated
    into a search gene (`Choice`, `IntRange`, `FloatRange`)."""
    choices = listed(gene_value_type(definition), definition.describe())
    if definition.kind in ("bool", "name") or definition.names:
        return Annotated[choices, AfterValidator(_as_gene)]

    def tag(value):
        return "list" if isinstance(value, list) else "range" if isinstance(value, dict) else None

    entry = Union[Annotated[choices, Tag("list")], Annotated[_range_model(name, definition), Tag("range")]]
    return Annotated[entry, Discriminator(tag, custom_error_type="automl_gene",
                                          custom_error_message=f"expected {definition.describe()}"),
                     AfterValidator(_as_gene)]
