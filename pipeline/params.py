"""`params.yaml` -> one frozen, validated pydantic model per section, before any work.

Each concern owns the settings it understands (`search.settings.SearchSettings`,
`data.settings.DataSettings`); this module composes them with the CNN-specific parts (the
`space:` section built over the gene catalog, the CNN's own search keys, train, fuse,
runtime, mlflow) into `Params`. One validation path for the whole file: every problem is a
`ConfigError` with one line naming the key. The same models give params.yaml's JSON Schema
(`automl schema`), which an editor with a YAML language server uses to check and complete it.
"""
from __future__ import annotations

import hashlib
import json
import typing
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (AfterValidator, BeforeValidator, Field, PrivateAttr, ValidationError, WithJsonSchema, create_model,
                      model_validator)

from pipeline.data.settings import DataSettings
from pipeline.deploy.export import EXPORTS
from pipeline.errors import ConfigError, first_line
from pipeline.genome.catalog import GENE_CATALOG, space_entry_type
from pipeline.genome.genome import conditions
from pipeline.search.settings import SearchSettings
from pipeline.search.space import Choice, Space
from pipeline.search.strategies.grid import check_grid
from pipeline.train.budget import BudgetSettings
from pipeline.validation import Between, Number, OneOf, Section, describe, fail, listed, one_line

OBJECTIVES = ("accuracy", "params", "flops", "latency")


class SearchParams(SearchSettings):
    """The engine's settings plus what only the CNN problem understands."""

    objectives: listed(Annotated[str, OneOf(OBJECTIVES)], "a non-empty list from " + ", ".join(OBJECTIVES)) = Field(
        ("accuracy",), description="accuracy, then (nsga2) what to minimize: params, flops (counted), latency (measured)")
    max_params: Annotated[int, Between(1, 10**12)] = Field(5_000_000, description="larger candidates are refused before training")
    candidate_timeout: Annotated[Number, Between(0.0, 10**9)] = Field(
        0.0, description="seconds one candidate may train; 0 = no limit")
    portfolio: bool = Field(True, description="propose textbook recipes (scaled to the data) first; see README")
    warm_start: str = Field("", description="an earlier search's history.csv or hall_of_fame.json, or the MLflow "
                                            "run id of its search (or pipeline) run: its best genomes come first")

    @model_validator(mode="after")
    def _accuracy_first(self):
        if self.objectives[0] != "accuracy":
            raise fail("the first objective must be accuracy", "objectives")
        return self


def _epochs(value):
    if value == "auto":
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(f"expected a number of epochs or 'auto', got {describe(value)}")
    if not 1 <= value <= 100_000:
        raise fail(f"{value} is out of range; allowed [1, 100000] or 'auto'")
    return value


Epochs = Annotated[Any, BeforeValidator(_epochs), WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 100_000}, {"const": "auto"}]})]


class TrainParams(Section):
    epochs: Epochs = Field(
        "auto", description="epochs of the final training, or auto: what the budget left after the search pays for")
    select: Annotated[str, OneOf(("last", "best"))] = Field(
        "last", description="keep the last epoch's weights, or those of the best validation epoch")
    refit: bool = Field(True, description="train again on train + validation for the chosen number of epochs")


class RuntimeParams(Section):
    device: Annotated[str, OneOf(("auto", "cpu", "cuda"))] = Field("auto", description="where training runs")
    threads: Annotated[int, Between(0, 4096)] = Field(0, description="CPU threads; 0 = one per available core")
    bf16: bool = Field(True, description="bf16 autocast on CUDA")


class FuseParams(Section):
    latency_repeats: Annotated[int, Between(1, 100_000)] = Field(20, description="timed forward passes per measurement")
    export: listed(Annotated[str, OneOf(tuple(EXPORTS))], "a list from " + ", ".join(EXPORTS), empty_ok=True) = Field(
        ("onnx", "pt2"), description="deployable copies in models/exports, each checked against PyTorch within 1e-4 "
                                     "(torchscript is deprecated since PyTorch 2.14)")


class MlflowParams(Section):
    experiment: str = Field("automl", min_length=1, description="the MLflow experiment of this project")
    tracking_uri: str = Field("", description="empty = sqlite:///mlflow.db in the project; MLFLOW_TRACKING_URI wins")
    registered_model: str = Field("automl-classifier", description="the registry name of the fused model")


class _SpaceFields(Section):
    noun: typing.ClassVar[str] = "gene"


#: `space:` - one entry per catalog gene: a list of choices or a range; absent = pinned.
SpaceSpec = create_model(
    "SpaceSpec", __base__=_SpaceFields,
    **{name: (space_entry_type(name, d) | None,
              Field(None, description=(d.why + "; " if d.why else "") + f"default {d.default!r}"))
       for name, d in GENE_CATALOG.items()},
)


def as_space(spec) -> Space:
    """The search space: the genes the user listed, every other gene pinned to its default."""
    genes = tuple((name, getattr(spec, name) or Choice((d.default,))) for name, d in GENE_CATALOG.items())
    return Space(genes, conditions())


class Params(Section):
    seed: Annotated[int, Between(0, 2**32 - 1)] = Field(0, description="the run seed every random draw derives from")
    data: DataSettings = Field(default_factory=DataSettings)
    space: Annotated[SpaceSpec, AfterValidator(as_space)] = Field(default_factory=lambda: as_space(SpaceSpec()))
    search: SearchParams = Field(default_factory=SearchParams)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    train: TrainParams = Field(default_factory=TrainParams)
    fuse: FuseParams = Field(default_factory=FuseParams)
    runtime: RuntimeParams = Field(default_factory=RuntimeParams)
    mlflow: MlflowParams = Field(default_factory=MlflowParams)
    _raw: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _grid_fits(self):
        check_grid(self.space, self.search)
        return self

    @model_validator(mode="after")
    def _auto_epochs_need_a_budget(self):
        if self.train.epochs == "auto" and not self.budget.total:
            raise fail("auto needs a pipeline budget (budget.total > 0), or give a number of epochs", "train.epochs")
        return self

    @property
    def raw(self) -> dict:
        """params.yaml as written (for MLflow and hashes)."""
        return self._raw

    def section_hash(self, *sections: str) -> str:
        """A short hash of the raw values of some sections (whole file when none given)."""
        return raw_hash({k: self._raw.get(k) for k in sections} if sections else self._raw)


def raw_hash(values: Any) -> str:
    """A short, stable hash of plain YAML values."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def params_from_dict(raw: Any) -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"params.yaml: expected a mapping of sections, got {describe(raw)}")
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(one_line(err, Params)) from None
    params._raw = raw
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every problem is a one-line `ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({first_line(err)})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({getattr(err, 'problem', None) or err})") from None
    try:
        return params_from_dict({} if raw is None else raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def json_schema() -> dict:
    """The JSON Schema of params.yaml (what `automl schema` prints)."""
    schema = Params.model_json_schema(mode="validation")
    schema["title"] = "params.yaml of automl-pipeline"
    schema["description"] = "The one file to edit; `dvc repro` reruns the stages whose keys changed."
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"
