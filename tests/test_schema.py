"""params.yaml's JSON Schema: the committed file is what `automl schema` prints, it accepts
the project's params.yaml, and it rejects what the loader rejects (so an editor shows the
same mistakes `dvc repro` would stop on)."""
from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from pipeline.params import schema_text
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads((ROOT / "params.schema.json").read_text())


def test_committed_schema_is_in_sync_with_the_models():
    assert (ROOT / "params.schema.json").read_text() == schema_text(), "run: automl schema --out params.schema.json"


def test_cli_prints_the_schema():
    out = subprocess.run([sys.executable, "-m", "stages.cli", "schema"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout) == json.loads(schema_text())


def test_params_yaml_names_its_schema_and_satisfies_it(schema):
    text = (ROOT / "params.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=params.schema.json"
    jsonschema.validate(yaml.safe_load(text), schema)


@pytest.mark.parametrize("section,key,value", [
    ("space", "optimizer", ["lion"]),
    ("space", "width", {"low": 1, "high": 16}),
    ("space", "widht", [8]),
    ("search", "population", 0),
    ("search", "algorithm", "bayes"),
    ("data", "dataset", "imagenet"),
    ("fuse", "export", ["tflite"]),
])
def test_schema_rejects_what_the_loader_rejects(schema, section, key, value):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw[section][key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, schema)
