"""params.yaml loading: the default file, and one test per kind of error."""
from __future__ import annotations

import copy

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.params import load_params, params_from_dict
from pipeline.search.space import Choice, FloatRange, IntRange
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def default_raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_default_params_load_into_typed_sections(default_raw):
    params = load_params(ROOT / "params.yaml")
    assert params.seed == 0
    assert params.data.dataset == "digits"
    assert params.search.population == default_raw["search"]["population"]
    assert params.train.epochs == default_raw["train"]["epochs"]
    assert params.space["width"] == IntRange(16, 96)
    assert params.space["lr"] == FloatRange(1e-4, 1e-1, log=True)
    assert params.space["kernel"] == Choice((3, 5))


def test_one_element_list_pins_a_gene_and_absent_genes_are_pinned_to_default():
    params = params_from_dict({"space": {"optimizer": ["adagrad"]}})
    assert params.space["optimizer"].pinned and params.space["optimizer"].options == ("adagrad",)
    assert params.space["norm"] == Choice(("batch",))


def test_float_written_without_dot_is_accepted():
    params = params_from_dict(yaml.safe_load("space:\n  lr: {low: 1e-4, high: 1e-1, log: true}\n"))
    assert params.space["lr"] == FloatRange(1e-4, 1e-1, True)


def _with(raw: dict, path: str, value):
    raw = copy.deepcopy(raw)
    keys = path.split(".")
    node = raw
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return raw


BAD = [
    ("bogus", 1, "bogus: unknown key"),
    ("search.populaton", 12, "search.populaton: unknown key"),
    ("space.widht", {"low": 1, "high": 2}, "space.widht: unknown gene"),
    ("search.population", "twelve", "search.population: expected an integer"),
    ("search.population", 1.5, "search.population: expected an integer"),
    ("search.population", True, "search.population: expected an integer"),
    ("search.options", {"random_share": "often"}, "search.options.random_share: expected a number"),
    ("search.options", {"random_share": 1.5}, "search.options.random_share: 1.5 is out of range"),
    ("search.options", [1], "search.options: expected a mapping"),
    ("search.population", 0, "search.population: 0 is out of range"),
    ("train.epochs", -1, "train.epochs: -1 is out of range"),
    ("data.val_fraction", 0.75, "val_fraction + test_fraction"),
    ("data.dataset", "imagenet", "data.dataset: unknown choice 'imagenet'"),
    ("space.width", {"low": 96, "high": 16}, "space.width: low (96) is greater than high (16)"),
    ("space.width", {"low": 1, "high": 16}, "space.width.low: 1 is out of range"),
    ("space.width", {"low": 16}, "space.width: missing 'high'"),
    ("space.width", {"low": 16, "high": 32, "step": 2}, "space.width: unknown key 'step'"),
    ("space.width", [16, "wide"], "space.width: expected an integer"),
    ("space.kernel", [3, 4], "space.kernel: 4 is not allowed"),
    ("space.norm", [], "space.norm: empty list of choices"),
    ("space.norm", ["batch", "instance"], "space.norm: unknown choice 'instance'"),
    ("space.norm", "batch", "space.norm: expected a list of names"),
    ("space.residual", ["yes"], "space.residual: expected true or false"),
    ("space.loss", ["cross_entropy", "ctc"], "space.loss: 'ctc' is refused"),
    ("space.weight_decay", {"low": 0.0, "high": 0.1, "log": True}, "space.weight_decay.low: a log-scaled range needs low > 0"),
    ("space.lr", {"low": 0.001, "high": 0.1, "log": "yes"}, "space.lr.log: expected true or false"),
    ("space.stages", {"low": 1, "high": 3, "log": True}, "space.stages.log: log scale is only for real-valued genes"),
    ("space.dropout", {"low": 0.0, "high": 2.0}, "space.dropout.high: 2.0 is out of range"),
    ("space", ["width"], "space: expected a mapping"),
    ("search", 5, "search: expected a mapping"),
    ("mlflow.experiment", "", "mlflow.experiment: expected a non-empty string"),
    ("runtime.device", "tpu", "runtime.device: unknown choice 'tpu'"),
    ("seed", -3, "seed: -3 is out of range"),
    ("data.dataset", "imagefolder", "data.source: required for dataset 'imagefolder'"),
    ("data.sha256", "abc", "data.sha256: expected 64 hexadecimal digits"),
    ("data.image_size", -1, "data.image_size: -1 is out of range"),
    ("data.max_samples", "all", "data.max_samples: expected an integer"),
    ("search.algorithm", "bayes", "search.algorithm: unknown choice 'bayes'"),
    ("search.objectives", ["params"], "search.objectives: the first objective must be accuracy"),
    ("search.objectives", ["accuracy", "speed"], "search.objectives: unknown choice 'speed'"),
    ("search.fidelity", {"rungs": [3, 1]}, "search.fidelity.rungs: expected increasing epoch budgets"),
    ("search.fidelity", {"rungs": [1, 3], "eta": 1}, "search.fidelity.eta: 1 is out of range"),
    ("search.fidelity", {"rungs": "1,3"}, "search.fidelity.rungs: expected a list of numbers"),
    ("search.fidelity", {"rungs": [0.5, 2.5]}, "search.fidelity.rungs: the last rung is the full training"),
    ("search.fidelity", {"rungs": [1, 3], "mode": "resume"}, "search.fidelity.mode: unknown choice 'resume'"),
    ("search.max_evaluations", -1, "search.max_evaluations: -1 is out of range"),
    ("search.time_budget", "1h", "search.time_budget: expected a number"),
    ("search.candidate_timeout", -5, "search.candidate_timeout: -5.0 is out of range"),
    ("search.backend", "dask", "search.backend: unknown choice 'dask'"),
    ("search.gpus_per_trial", -0.5, "search.gpus_per_trial: -0.5 is out of range"),
    ("fuse.export", ["tflite"], "fuse.export: unknown choice 'tflite'"),
    ("fuse.export", "onnx", "fuse.export: expected a list from onnx, pt2, torchscript, got 'onnx'"),
    ("runtime.threads", -2, "runtime.threads: -2 is out of range"),
    ("runtime.bf16", "yes", "runtime.bf16: expected true or false"),
    ("mlflow.tracking_uri", 5, "mlflow.tracking_uri: expected a string"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_value_is_one_line_naming_the_key(default_raw, path, value, message):
    with pytest.raises(ConfigError) as caught:
        params_from_dict(_with(default_raw, path, value))
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        params_from_dict(["seed", 0])


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 0\nsearch: {population: [\n")
    with pytest.raises(ConfigError, match=r"params.yaml: not valid YAML at line \d"):
        load_params(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: not found"):
        load_params(tmp_path / "nope.yaml")


def test_params_hash_changes_with_values_and_only_with_chosen_sections():
    a = params_from_dict({"train": {"epochs": 3}, "search": {"population": 4}})
    b = params_from_dict({"train": {"epochs": 4}, "search": {"population": 4}})
    assert a.section_hash() != b.section_hash()
    assert a.section_hash("search") == b.section_hash("search")


def test_defaults_in_code_equal_params_yaml(default_raw):
    """A key left out of params.yaml means what params.yaml says it is."""
    from pipeline.params import Params

    defaults, loaded = Params(), params_from_dict(default_raw)
    for section, values in default_raw.items():
        if section in ("space", "seed") or not isinstance(values, dict):
            continue
        for key in values:
            assert getattr(getattr(defaults, section), key) == getattr(getattr(loaded, section), key), f"{section}.{key}"
