"""Model building: the output-size formula, shapes, and validity over the whole space."""
from __future__ import annotations

import random

import pytest
import torch

from pipeline.genome.genome import default_genome, sample_genome
from pipeline.nn.model import InvalidArchitecture, build_model, conv_output_size, head_features, plan_shapes
from pipeline.params import load_params
from tests.helpers import ROOT


def lenet():
    genome = default_genome()
    genome.update(stages=2, blocks_per_stage=1, width=8, kernel=5, padding="valid", pooling="max",
                  global_pool="flatten", norm="none", residual=False)
    return genome


def test_output_size_formula():
    assert conv_output_size(32, 5) == 28
    assert conv_output_size(28, 2, 0, 2) == 14
    assert conv_output_size(32, 3, 1, 1) == 32
    assert conv_output_size(7, 3, 1, 2) == 4


def test_design_notes_example_conv5_pool2_conv5_pool2():
    """3x32x32 -> 28 -> 14 -> 10 -> 5, flatten gives 16*5*5 features."""
    shapes = plan_shapes(lenet(), (3, 32, 32))
    assert [s.height for s in shapes] == [32, 28, 14, 10, 5]
    assert [s.channels for s in shapes] == [3, 8, 8, 16, 16]
    assert head_features(lenet(), shapes[-1]) == 16 * 5 * 5
    model = build_model(lenet(), (3, 32, 32), 10)
    assert model.classifier.in_features == 400
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_pooling_keeps_the_channel_count():
    for pooling in ("max", "avg", "none"):
        genome = dict(lenet(), pooling=pooling, padding="same")
        shapes = plan_shapes(genome, (3, 32, 32))
        pools = [(a, b) for a, b in zip(shapes, shapes[1:]) if b.name.endswith("pool")]
        assert pools and all(a.channels == b.channels for a, b in pools)


def test_impossible_architecture_is_refused_before_pytorch_sees_it():
    genome = dict(lenet(), stages=3)  # 8 -> 4 -> pool 2 -> conv5 on 2x2 is impossible
    with pytest.raises(InvalidArchitecture):
        plan_shapes(genome, (1, 8, 8))
    with pytest.raises(InvalidArchitecture):
        build_model(genome, (1, 8, 8), 10)


def _body_shapes(model, x):
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for m in model.body]
    model(x)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 32, 32)])
def test_500_genomes_from_the_default_space_build_and_match_the_plan(input_shape):
    space = load_params(ROOT / "params.yaml").space
    rng = random.Random(0)
    torch.manual_seed(0)
    for _ in range(500):
        genome = sample_genome(space, rng, input_shape)
        model = build_model(genome, input_shape, 10).eval()
        planned = [(s.channels, s.height, s.width) for s in plan_shapes(genome, input_shape)[1:]]
        with torch.no_grad():
            assert _body_shapes(model, torch.rand(2, *input_shape)) == planned, genome
            assert model(torch.rand(2, *input_shape)).shape == (2, 10)
