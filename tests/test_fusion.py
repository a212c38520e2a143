"""Conv+BatchNorm fusion: numerically equal, no BatchNorm left, others reported."""
from __future__ import annotations

import torch
from torch import nn

from pipeline.deploy.artifacts import ModelInfo, load_model, save_model
from pipeline.deploy.fusion import fuse_model
from pipeline.genome.genome import default_genome
from pipeline.nn.model import build_model
from tests.helpers import randomize_batchnorm


def residual_se_genome(**changes):
    genome = default_genome()
    genome.update(stages=2, blocks_per_stage=2, width=16, residual=True, attention="se", norm="batch", pooling="none")
    genome.update(changes)
    return genome


def test_residual_se_model_fuses_exactly_with_no_batchnorm_left():
    torch.manual_seed(0)
    model = build_model(residual_se_genome(), (3, 16, 16), 10).eval()
    randomize_batchnorm(model)
    fused, report = fuse_model(model)
    x = torch.rand(8, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), fused(x), atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    # 2 stages x 2 blocks x 2 convs + 1 projection (width change) + first block of stage 0
    # projection (3 -> 16 channels) + 2 stride-2 downsampling convs
    expected = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert report.folded == expected and expected >= 10
    assert report.left == {}
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_fusion_matches_torch_fx_fuse_on_a_plain_stack():
    from torch.fx.experimental.optimization import fuse as fx_fuse

    torch.manual_seed(0)
    model = build_model(residual_se_genome(residual=False, attention="none"), (1, 8, 8), 10).eval()
    randomize_batchnorm(model)
    ours, _ = fuse_model(model)
    theirs = fx_fuse(model)
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def test_group_and_layer_norm_are_left_and_reported():
    model = build_model(residual_se_genome(norm="group"), (1, 8, 8), 10).eval()
    _, report = fuse_model(model)
    assert report.folded == 0 and report.left["GroupNorm"] > 0


def test_fused_model_file_round_trips(tmp_path):
    torch.manual_seed(0)
    genome = residual_se_genome()
    model = build_model(genome, (1, 8, 8), 10).eval()
    randomize_batchnorm(model)
    fused, _ = fuse_model(model)
    info = ModelInfo(genome, [str(i) for i in range(10)], [1, 8, 8], [0.0], [1.0], fused=True)
    save_model(tmp_path / "fused.pt", fused, info)
    loaded, loaded_info = load_model(tmp_path / "fused.pt")
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), fused(x))
    assert loaded_info.fused and loaded_info.class_names == info.class_names
