"""Training: every categorical choice of every gene trains, and the fit loop's contracts."""
from __future__ import annotations

import math

import pytest
import torch

from pipeline.genome.catalog import GENE_CATALOG
from pipeline.genome.genome import default_genome, is_valid
from pipeline.genome.problem import CNNProblem
from pipeline.nn.model import build_model
from pipeline.params import params_from_dict
from pipeline.train.augment import AUGMENTATIONS
from pipeline.train.fit import fit
from pipeline.train.losses import LOSSES
from pipeline.train.optim import Schedule, make_optimizer
from tests.helpers import task_of

CHOICES = [
    (name, value)
    for name, definition in GENE_CATALOG.items()
    if definition.kind in ("name", "bool") or definition.names
    for value in definition.names
]


def small_genome(**changes):
    genome = default_genome()
    genome.update(width=8, stages=2, lr=1e-2, batch_size=16)
    genome.update(changes)
    if changes.get("scheduler") == "lambda" or "lambda_schedule" in changes:
        genome["scheduler"] = "lambda"
    if "label_smoothing" in changes:
        genome["loss"] = "cross_entropy"
    if not is_valid(genome, (1, 8, 8)):
        genome["stages"] = 1
    if genome["optimizer"] in ("sgd", "sgd_momentum", "sgd_nesterov", "adagrad"):
        genome["lr"] = 5e-2
    return genome


@pytest.mark.parametrize("gene,value", CHOICES, ids=[f"{g}={v}" for g, v in CHOICES])
def test_every_choice_overfits_one_batch(gene, value, tiny_digits):
    """Build the model, train a few steps on one batch: right shape, finite, decreasing loss."""
    torch.manual_seed(0)
    genome = small_genome(**{gene: value})
    model = build_model(genome, tiny_digits.input_shape, 10, tiny_digits.mean, tiny_digits.std)
    x = tiny_digits.train.images[:16].float() / 255
    y = tiny_digits.train.labels[:16]
    optimizer = make_optimizer(genome, model.parameters())
    steps = 25
    schedule = Schedule(genome, optimizer, epochs=steps, steps_per_epoch=1)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        model.train()
        inputs = AUGMENTATIONS[genome["augment"]](x, generator, torch.arange(len(x)), 0) if gene == "augment" else x
        embedding = model.embed(inputs)
        logits = model.classifier(embedding)
        assert logits.shape == (16, 10)
        loss = LOSSES[genome["loss"]](logits, y, embedding, genome)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.after_batch()
        schedule.after_epoch(loss.item())
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert min(losses[-5:]) < losses[0], losses


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_augmentations_keep_shape_range_and_are_seeded(name):
    x = torch.rand(8, 3, 16, 16)
    a = AUGMENTATIONS[name](x, torch.Generator().manual_seed(1))
    b = AUGMENTATIONS[name](x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    if name != "none":
        assert not torch.equal(a, x)


def test_translate_moves_content_by_at_most_the_pad():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1
    out = AUGMENTATIONS["translate"](x, torch.Generator().manual_seed(0))
    ys, xs = torch.nonzero(out[:, 0], as_tuple=True)[1:]
    assert ((ys - 4).abs() <= 1).all() and ((xs - 4).abs() <= 1).all()
    assert out.sum() == 64  # one pixel each, never lost at a 1-pixel shift


def test_fit_is_deterministic_on_cpu_and_learns(tiny_digits):
    genome = small_genome(lr=3e-3, optimizer="adamw")
    _, first = fit(genome, tiny_digits, 3, seed=5, device=torch.device("cpu"))
    _, second = fit(genome, tiny_digits, 3, seed=5, device=torch.device("cpu"))
    assert [vars(e) for e in first.epochs] == [vars(e) for e in second.epochs]
    assert first.val_accuracy > 0.5


def evaluate(data, genome, budget, **options):
    """One candidate through the CNN problem, as the search evaluates it."""
    return CNNProblem(params_from_dict({}).space, data, **options).evaluate(task_of(genome, budget))


def test_nan_loss_is_a_recorded_failure(tiny_digits):
    genome = small_genome(optimizer="sgd_momentum", norm="none", activation="leaky_relu")
    genome.update(lr=10.0, momentum=0.9)  # a learning rate of 10 diverges
    result = evaluate(tiny_digits, genome, 3)
    assert result.failure == "nan_loss"
    assert result.score == 0.0 and result.loss == math.inf


def test_too_large_network_is_refused_before_training(tiny_digits):
    genome = small_genome()
    result = evaluate(tiny_digits, genome, 1, max_params=10)
    assert result.failure == "too_large" and "max_params" in result.detail


def test_exception_in_a_candidate_is_a_recorded_failure(tiny_digits):
    genome = small_genome(batch_size=16)
    broken = type(tiny_digits)(tiny_digits.train, tiny_digits.val, tiny_digits.test, ["only"] * 1, tiny_digits.mean, tiny_digits.std)
    result = evaluate(broken, genome, 1)
    assert result.failure == "exception"
    assert "Error" in result.detail  # the exception's type and message are kept


def test_candidate_past_its_timeout_is_a_recorded_failure(tiny_digits):
    genome = small_genome(batch_size=1)  # 200 steps per epoch: slow enough to overrun 1 ms
    result = evaluate(tiny_digits, genome, 5, time_limit=0.001)
    assert result.failure == "timeout" and "candidate_timeout" in result.detail


CONTINUATION = [
    dict(optimizer="adamw", scheduler="cosine"),
    dict(optimizer="sgd_nesterov", scheduler="onecycle", augment="translate", dropout=0.3),
    dict(optimizer="rmsprop", scheduler="plateau", norm="group"),
    dict(optimizer="amsgrad", scheduler="lambda", lambda_schedule="warmup_cosine", augment="cutout"),
    dict(optimizer="sgd_momentum", scheduler="cyclic"),
    dict(optimizer="adagrad", scheduler="step", loss="triplet_margin"),
    dict(optimizer="sgd_nesterov", scheduler="polynomial", ema=0.9, whiten=True, norm="batch_no_scale",
         augment="alternating_flip_translate", tta=True),
]


@pytest.mark.parametrize("changes", CONTINUATION, ids=[c["scheduler"] for c in CONTINUATION])
@pytest.mark.parametrize("rungs", [(1, 3), (0.5, 1.7, 3)], ids=["epochs", "shares"])
def test_continuing_from_a_rung_is_bitwise_one_uninterrupted_training(tiny_digits, changes, rungs):
    genome = small_genome(**changes)
    cpu = torch.device("cpu")
    whole_model, whole = fit(genome, tiny_digits, rungs[-1], seed=9, device=cpu, horizon=rungs[-1])
    state = None
    for budget in rungs:
        model, part = fit(genome, tiny_digits, budget, seed=9, device=cpu, horizon=rungs[-1], resume=state,
                          keep_state=True)
        state = part.state
        assert torch.load(__import__("io").BytesIO(state), weights_only=True)  # no pickled code in a state
    assert [vars(e) for e in part.epochs] == [vars(e) for e in whole.epochs]
    assert (part.val_accuracy, part.val_loss) == (whole.val_accuracy, whole.val_loss)
    for (name, a), (_, b) in zip(model.state_dict().items(), whole_model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_share_of_an_epoch_trains_that_share_of_the_steps(tiny_digits):
    genome = small_genome(batch_size=20)  # 200 images: 10 steps per epoch
    _, quarter = fit(genome, tiny_digits, 0.3, seed=1, device=torch.device("cpu"), horizon=3, keep_state=True)
    position = torch.load(__import__("io").BytesIO(quarter.state), weights_only=True)["step"]
    assert position == 3 and quarter.epochs == [] and 0.0 <= quarter.val_accuracy <= 1.0
