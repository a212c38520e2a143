"""`params.yaml` -> one frozen, typed dataclass per section, validated before any work.

One loader walks the dataclass fields, so every section gets the same checks: unknown keys
(with the known ones listed), wrong types, out-of-range numbers and unknown choices all raise
`ConfigError` with one line naming the key (in the spirit of litgpt's config dataclasses and
nanoGPT's "Unknown config key"). Library functions take these objects, never raw dicts.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.space import SearchSpace, build_space


def _spec(default, low=None, high=None, choices=None, doc=""):
    return field(default=default, metadata={"low": low, "high": high, "choices": choices, "doc": doc})


DATASETS = ("digits", "imagefolder", "cifar10", "cifar100", "mnist", "fashion_mnist", "kmnist", "svhn")


@dataclass(frozen=True)
class DataParams:
    dataset: str = _spec("digits", choices=DATASETS)
    val_fraction: float = _spec(0.15, 0.01, 0.8)
    test_fraction: float = _spec(0.2, 0.01, 0.8, doc="ignored for datasets with an official test split")
    source: str = _spec("", doc="imagefolder: a directory, a .tar/.tar.gz/.zip archive, or an https:// or file:// URL")
    sha256: str = _spec("", doc="required for archives and URLs")
    image_size: int = _spec(0, 0, 4096, doc="resize to a square of this side; 0 = keep (all images must match)")
    max_samples: int = _spec(0, 0, 10**9, doc="a stratified subset of at most this many images; 0 = all")

    def __post_init__(self):
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ConfigError("data: val_fraction + test_fraction must be below 0.9 to leave data to train on")
        if self.dataset == "imagefolder" and not self.source:
            raise ConfigError("data.source: required for dataset 'imagefolder' (a directory, archive or URL)")
        if self.sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
            raise ConfigError(f"data.sha256: expected 64 hexadecimal digits, got '{self.sha256}'")
        remote = self.source.startswith(("http://", "https://", "file://"))
        archive = self.source.lower().endswith((".tar", ".tar.gz", ".tgz", ".zip"))
        if self.dataset == "imagefolder" and (remote or archive) and not self.sha256:
            raise ConfigError(f"data.sha256: required for the archive or URL '{self.source}'")


@dataclass(frozen=True)
class FidelityParams:
    """Successive halving: train everyone for rungs[0] epochs, the best 1/eta for rungs[1], ..."""

    rungs: tuple = _spec((), 1, 100_000, doc="epoch budgets, increasing; empty = off (every candidate gets search.epochs)")
    eta: int = _spec(3, 2, 100)

    def __post_init__(self):
        if list(self.rungs) != sorted(set(self.rungs)):
            raise ConfigError(f"search.fidelity.rungs: expected increasing epoch budgets, got {list(self.rungs)}")


OBJECTIVES = ("accuracy", "params", "flops", "latency")


@dataclass(frozen=True)
class SearchParams:
    algorithm: str = _spec("ga", choices=("ga", "nsga2", "random", "grid", "tpe"))
    population: int = _spec(12, 2, 100_000)
    generations: int = _spec(8, 0, 100_000)
    epochs: int = _spec(3, 1, 10_000)
    crossover: float = _spec(0.6, 0.0, 1.0)
    mutation: float = _spec(0.3, 0.0, 1.0)
    gene_mutation: float = _spec(0.2, 0.0, 1.0, doc="probability that each gene of a mutant changes")
    tournament: int = _spec(3, 1, 1000)
    hall_of_fame: int = _spec(5, 1, 1000)
    objectives: tuple = _spec(("accuracy",), choices=OBJECTIVES, doc="nsga2: accuracy plus what to minimize")
    fidelity: FidelityParams = field(default_factory=FidelityParams)
    max_evaluations: int = _spec(0, 0, 10**9, doc="stop after this many trainings; 0 = no limit")
    max_epochs: int = _spec(0, 0, 10**12, doc="stop when this many training epochs are spent; 0 = no limit")
    time_budget: float = _spec(0.0, 0.0, 10**9, doc="stop after this many seconds; 0 = no limit")
    patience: int = _spec(0, 0, 100_000, doc="stop after this many generations without improvement; 0 = off")
    max_params: int = _spec(5_000_000, 1, 10**12)
    candidate_timeout: float = _spec(0.0, 0.0, 10**9, doc="seconds one candidate may train; 0 = no limit")
    backend: str = _spec("processes", choices=("serial", "processes", "ray"))
    workers: int = _spec(0, 0, 1024, doc="parallel candidates; 0 = one per available core")
    ray_address: str = _spec("", doc="backend ray: empty = start a local Ray, else an existing cluster's address")
    gpus_per_trial: float = _spec(0.0, 0.0, 64.0, doc="backend ray: GPUs per candidate, fractional to share one")

    def __post_init__(self):
        if self.objectives[0] != "accuracy":
            raise ConfigError("search.objectives: the first objective must be accuracy")
        if self.algorithm == "nsga2" and len(self.objectives) < 2:
            raise ConfigError("search.objectives: nsga2 needs accuracy plus at least one of params, flops, latency")
        if self.algorithm in ("grid", "tpe") and self.fidelity.rungs:
            raise ConfigError(f"search.fidelity: successive halving works with ga, nsga2 and random, not {self.algorithm}")

    @property
    def budgets(self) -> tuple:
        """Epoch budgets a candidate may receive: the rungs, or just search.epochs."""
        return tuple(self.fidelity.rungs) or (self.epochs,)


@dataclass(frozen=True)
class TrainParams:
    epochs: int = _spec(30, 1, 100_000)


@dataclass(frozen=True)
class RuntimeParams:
    device: str = _spec("auto", choices=("auto", "cpu", "cuda"))
    threads: int = _spec(0, 0, 4096, doc="CPU threads; 0 = one per available core")
    bf16: bool = _spec(True, doc="bf16 autocast on CUDA")


@dataclass(frozen=True)
class FuseParams:
    latency_repeats: int = _spec(20, 1, 100_000)
    export: tuple = _spec(("torchscript", "onnx"), choices=("torchscript", "onnx"))


@dataclass(frozen=True)
class MlflowParams:
    experiment: str = _spec("automl")
    tracking_uri: str = _spec("", doc="empty = sqlite:///mlflow.db in the project; MLFLOW_TRACKING_URI wins")
    registered_model: str = _spec("automl-classifier")


@dataclass(frozen=True)
class Params:
    seed: int = _spec(0, 0, 2**32 - 1)
    data: DataParams = field(default_factory=DataParams)
    space: SearchSpace = field(default_factory=lambda: build_space({}))
    search: SearchParams = field(default_factory=SearchParams)
    train: TrainParams = field(default_factory=TrainParams)
    fuse: FuseParams = field(default_factory=FuseParams)
    runtime: RuntimeParams = field(default_factory=RuntimeParams)
    mlflow: MlflowParams = field(default_factory=MlflowParams)
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def section_hash(self, *sections: str) -> str:
        """A short hash of the raw values of some sections (whole file when none given)."""
        chosen = {k: self.raw.get(k) for k in sections} if sections else self.raw
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _describe(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _check_scalar(key: str, kind: type, meta: dict, value: Any) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_describe(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_describe(value)}")
    elif kind is float:
        if isinstance(value, str):
            try:
                value = float(value)  # PyYAML reads 1e-4 (no dot) as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key}: expected a number, got {_describe(value)}")
        value = float(value)
    elif kind is str:
        if not isinstance(value, str) or (meta["choices"] is None and key.endswith("experiment") and not value.strip()):
            raise ConfigError(f"{key}: expected a {'non-empty ' if key.endswith('experiment') else ''}string, got {_describe(value)}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{key}: unknown choice {_describe(value)}; allowed: {', '.join(meta['choices'])}")
    low, high = meta["low"], meta["high"]
    if low is not None and not low <= value <= high:
        raise ConfigError(f"{key}: {value} is out of range; allowed [{low}, {high}]")
    return value


def _check_list(key: str, meta: dict, value: Any) -> tuple:
    """A list field: names from `choices`, or integers within [low, high]."""
    if meta["choices"] is None:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list of integers, got {_describe(value)}")
        return tuple(_check_scalar(key, int, meta, item) for item in value)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: expected a non-empty list from {', '.join(meta['choices'])}, got {_describe(value)}")
    for item in value:
        if not isinstance(item, str) or item not in meta["choices"]:
            raise ConfigError(f"{key}: unknown choice {_describe(item)}; allowed: {', '.join(meta['choices'])}")
    return tuple(dict.fromkeys(value))


def _build_section(cls: type, raw: Any, prefix: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix}: expected a mapping, got {_describe(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "raw"}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{prefix}{'.' if prefix else ''}{key}: unknown key; known keys: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        key = f"{prefix}.{name}" if prefix else name
        kind = hints[name]
        if kind is tuple:
            values[name] = _check_list(key, f.metadata, raw[name])
        elif kind is SearchSpace:
            values[name] = build_space(raw[name])
        elif dataclasses.is_dataclass(kind):
            values[name] = _build_section(kind, raw[name], key)
        else:
            values[name] = _check_scalar(key, kind, f.metadata, raw[name])
    return cls(**values)


def params_from_dict(raw: Any) -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"params.yaml: expected a mapping of sections, got {_describe(raw)}")
    params = _build_section(Params, raw, "")
    from pipeline.strategies import check_grid  # here, not at import: strategies imports params

    check_grid(params.space, params.search)
    return dataclasses.replace(params, raw=raw)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every problem is a one-line `ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({err})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({getattr(err, 'problem', None) or err})") from None
    if raw is None:
        raw = {}
    try:
        return params_from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
