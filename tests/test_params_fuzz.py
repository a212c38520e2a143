"""Fuzzing params.yaml: any mutation either loads or fails with the project's one-line error."""
from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.params import Params, params_from_dict
from tests.helpers import ROOT

DEFAULT = yaml.safe_load((ROOT / "params.yaml").read_text())

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["batch", "adam", "digits", "1e-4", "cuda", "ctc", "ga"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=8)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))


PATHS = [p for p in _paths(DEFAULT) if p]


@st.composite
def mutated(draw):
    raw = copy.deepcopy(DEFAULT)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = raw
        for key in path[:-1]:
            if not isinstance(parent, dict) or key not in parent:
                break
            parent = parent[key]
        else:
            if not isinstance(parent, dict):
                continue
            action = draw(st.sampled_from(["replace", "delete", "rename", "nest"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete":
                parent.pop(path[-1], None)
            elif action == "rename":
                parent[draw(st.text(min_size=1, max_size=10))] = parent.pop(path[-1], None)
            else:
                parent[path[-1]] = {"nested": parent.get(path[-1])}
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_params_load_or_fail_with_one_line(raw):
    try:
        params = params_from_dict(raw)
    except ConfigError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert isinstance(params, Params)
        assert params.search.population >= 2


@settings(max_examples=200, deadline=None)
@given(values)
def test_any_yaml_document_loads_or_fails_with_one_line(document):
    try:
        params_from_dict(document)
    except ConfigError as err:
        assert "\n" not in str(err)
