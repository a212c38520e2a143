"""The speed runs' trainer techniques compute what they claim: the EMA is the closed form,
the whitening stem whitens the training patches, the flip-averaged logits are the mean of
the two passes, the alternating flip shows every image both ways, the reflected translation
copies mirrored borders, a scale-free batch norm keeps its scale and fuses; and a network
with all of them survives fusion and every export within 1e-4."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.deploy.export import EXPORTS, max_difference
from pipeline.deploy.fusion import fuse_model
from pipeline.genome.genome import default_genome
from pipeline.genome.portfolio import plainer, portfolio, speed_run
from pipeline.nn.blocks import BatchNormNoScale, PatchWhitening
from pipeline.nn.model import build_model
from pipeline.params import load_params
from pipeline.search.space import Choice, Space
from pipeline.train.augment import alternating_flip, reflect_translate
from pipeline.train.averaging import weight_average
from pipeline.train.fit import fit
from tests.helpers import ROOT, randomize_batchnorm


def test_the_weight_average_is_the_closed_form_with_its_warm_up():
    net = torch.nn.Linear(3, 2)
    trajectory = [torch.randn(2, 3, generator=torch.Generator().manual_seed(k)) for k in range(30)]
    average = weight_average(net, decay=0.9)
    expected = None
    for k, weights in enumerate(trajectory):
        with torch.no_grad():
            net.weight.copy_(weights)
        average.update_parameters(net)
        decay = min(0.9, (1 + k) / (10 + k))  # the k-th update after the first, which copies
        expected = weights.clone() if expected is None else decay * expected + (1 - decay) * weights
    assert torch.allclose(average.module.weight, expected, atol=1e-6)
    assert not torch.allclose(expected, trajectory[-1])


def test_fit_with_ema_returns_and_scores_the_averaged_weights(tiny_digits):
    genome = {**default_genome(), "stages": 2, "width": 8, "batch_size": 16, "optimizer": "sgd_momentum", "lr": 0.05}
    plain, plain_fit = fit(genome, tiny_digits, 2, seed=4, device=torch.device("cpu"))
    averaged, averaged_fit = fit({**genome, "ema": 0.9}, tiny_digits, 2, seed=4, device=torch.device("cpu"))
    assert not torch.equal(plain.classifier.weight, averaged.classifier.weight)
    from pipeline.train.fit import evaluate_split

    assert evaluate_split(averaged, tiny_digits.val, torch.device("cpu")) == (averaged_fit.val_accuracy,
                                                                              averaged_fit.val_loss)
    again, _ = fit({**genome, "ema": 0.9}, tiny_digits, 2, seed=4, device=torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(averaged.state_dict().values(), again.state_dict().values()))


def test_the_whitening_stem_whitens_the_patches_it_was_computed_from():
    torch.manual_seed(0)
    mixing = torch.randn(12, 12)
    patches = torch.randn(4000, 12) @ mixing  # correlated 2x2 patches of 3 channels
    images = patches.reshape(-1, 2, 2, 3).permute(0, 3, 1, 2)  # each image is one 2x2 patch
    layer = PatchWhitening(3, eps=1e-9)
    layer.initialise(images)
    with torch.no_grad():
        out = layer(images).flatten(1)  # (N, 24): 12 whitened, then their negatives
    covariance = torch.cov(out[:, :12].T.double())
    assert torch.allclose(covariance, torch.eye(12, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(out[:, 12:] - layer.bias[12:], -(out[:, :12] - layer.bias[:12]), atol=1e-5)
    assert not layer.weight.requires_grad and layer.bias.requires_grad


def test_fit_computes_the_whitening_from_the_training_split(tiny_digits):
    genome = {**default_genome(), "stages": 1, "width": 8, "batch_size": 16, "whiten": True}
    model, _ = fit(genome, tiny_digits, 1, seed=0, device=torch.device("cpu"))
    reference = PatchWhitening(1)
    reference.initialise(model.normalize.from_bytes(tiny_digits.train.images[:1000]))
    assert torch.allclose(model.whitening.weight, reference.weight)


def test_flip_averaged_logits_are_the_mean_of_the_two_passes():
    torch.manual_seed(0)
    genome = {**default_genome(), "stages": 2, "width": 8}
    plain = build_model(genome, (3, 16, 16), 5).eval()
    averaged = build_model({**genome, "tta": True}, (3, 16, 16), 5).eval()
    averaged.load_state_dict(plain.state_dict())
    x = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(averaged(x), (plain(x) + plain(x.flip(3))) / 2, atol=1e-6)
        assert torch.allclose(averaged(x), averaged(x.flip(3)), atol=1e-5)  # mirror-invariant


def test_the_alternating_flip_shows_every_image_both_ways_in_two_epochs():
    x = torch.randint(0, 256, (64, 3, 4, 4), dtype=torch.uint8)
    index = torch.arange(64)
    generator = torch.Generator().manual_seed(0)
    even, odd = alternating_flip(x, generator, index, 0), alternating_flip(x, generator, index, 1)
    flipped_even = (even == x.flip(3)).flatten(1).all(1) & ~(even == x).flatten(1).all(1)
    flipped_odd = (odd == x.flip(3)).flatten(1).all(1) & ~(odd == x).flatten(1).all(1)
    assert not (flipped_even & flipped_odd).any() and (flipped_even | flipped_odd).sum() >= 60
    assert 20 <= int(flipped_even.sum()) <= 44  # about half
    assert torch.equal(alternating_flip(x, torch.Generator().manual_seed(5), index, 2), even)  # no randomness


def test_the_reflected_translation_is_a_crop_of_the_reflection_padded_image():
    x = torch.rand(40, 3, 32, 32)
    out = reflect_translate(x, torch.Generator().manual_seed(1))
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    crops = torch.stack([padded[:, :, dy:dy + 32, dx:dx + 32] for dy in range(5) for dx in range(5)], 1)
    matches = (crops == out[:, None]).flatten(2).all(2)
    assert matches.any(1).all()  # every image is one of the 25 shifts of its reflected padding
    assert (matches[:, 12] == False).any()  # noqa: E712  (some moved)


def test_a_batch_norm_without_scale_keeps_it_at_one_and_fuses():
    genome = {**default_genome(), "stages": 2, "width": 8, "batch_size": 16, "norm": "batch_no_scale"}
    model = build_model(genome, (1, 8, 8), 10)
    norms = [m for m in model.modules() if isinstance(m, BatchNormNoScale)]
    assert norms and all(not m.weight.requires_grad and m.momentum == 0.4 for m in norms)
    fused, report = fuse_model(model.eval())
    assert report.folded == len(norms) and not report.left


@pytest.fixture(scope="module")
def speed_run_net():
    torch.manual_seed(0)
    genome = {**default_genome(), **speed_run((3, 32, 32)), "width": 8}
    model = build_model(genome, (3, 32, 32), 10)
    model.whitening.initialise(torch.randn(20, 3, 32, 32))
    randomize_batchnorm(model)
    return model.eval()


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_the_speed_run_network_survives_fusion_and_every_export(tmp_path, speed_run_net, kind):
    fused, report = fuse_model(speed_run_net)
    assert report.folded > 0 and not report.left
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fused(x), speed_run_net(x), atol=1e-4)
    export = EXPORTS[kind]
    path = tmp_path / f"model{export.suffix}"
    export.write(fused, torch.rand(2, 3, 32, 32), path, {"class_names": list("abcdefghij"), "input_shape": [3, 32, 32]})
    assert max_difference(fused, export.load(path), torch.rand(7, 3, 32, 32)) < 1e-4


def test_the_speed_run_recipe_joins_the_portfolio_for_colour_images_of_32_pixels_and_up():
    space = load_params(ROOT / "params.yaml").space
    assert speed_run((1, 8, 8)) is None and speed_run((3, 16, 16)) is None
    assert len(portfolio(space, (3, 32, 32))) == len(portfolio(space, (1, 8, 8))) + 1
    last = portfolio(space, (3, 32, 32))[-1]
    # the default space does not offer the techniques: the recipe falls back to their plainer forms
    assert (last["whiten"], last["tta"], last["norm"], last["activation"]) == (False, False, "batch", "gelu")
    assert last["augment"] == "flip"  # the alternating flip's plainer form, not the first option (none)


def test_a_technique_falls_back_to_the_plainest_form_the_space_offers():
    space = load_params(ROOT / "params.yaml").space
    narrowed = Space(tuple((name, Choice(("none", "translate", "flip_translate")) if name == "augment" else gene)
                           for name, gene in space.genes), space.conditions)
    assert plainer({"augment": "alternating_flip_translate", "norm": "batch_no_scale"}, narrowed) == {
        "augment": "flip_translate", "norm": "batch"}
    # no plainer form offered (the random flip is not): the projection takes the first option
    assert narrowed.project(plainer({**default_genome(), "augment": "alternating_flip"}, narrowed))["augment"] == "none"


@pytest.mark.parametrize("rule, factor", [("none", 1.0), ("linear", 4.0), ("sqrt", 2.0)])
def test_the_learning_rate_follows_the_batch_size_by_its_rule(rule, factor):
    from pipeline.train.optim import Schedule, make_optimizer

    genome = {**default_genome(), "batch_size": 512, "lr": 0.01, "lr_scaling": rule, "optimizer": "sgd_nesterov",
              "scheduler": "onecycle"}
    optimizer = make_optimizer(genome, torch.nn.Linear(2, 2).parameters())
    schedule = Schedule(genome, optimizer, 3, 10)
    assert optimizer.param_groups[0]["max_lr"] == pytest.approx(0.01 * factor)
    assert schedule.scheduler.total_steps == 30
