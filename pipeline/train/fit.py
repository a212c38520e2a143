"""The candidate trainer: whole splits as tensors on the device, no per-sample DataLoader.

Batches are index slices of a seeded permutation; augmentation runs on the batch on the
device; the loss is summed on the device and read once per epoch, so a CUDA epoch has no
host sync inside it. A NaN/inf loss or a too-large network raises `CandidateFailure` with a
reason the search records. `fit` is deterministic on CPU for a given seed.

Training can stop and continue: `fit` trains to a budget that may end inside an epoch (a
share of the training images), under a learning-rate schedule laid over a longer
`horizon`, and with `keep_state` returns everything needed to continue (weights,
optimizer, scheduler, the permutation being walked, and the RNG streams) as bytes that
`torch.load(weights_only=True)` reads. Continuing from that state to a larger budget is
bit for bit the training an uninterrupted `fit` to that budget does (tested on the CPU):
successive-halving rungs continue their candidates instead of training them again.
"""
from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from pipeline.data.types import PreparedData, Split
from pipeline.errors import CandidateFailure
from pipeline.nn.inference import predict_logits
from pipeline.nn.measure import count_parameters
from pipeline.nn.model import InvalidArchitecture, Net, build_model
from pipeline.runtime import autocast
from pipeline.train.augment import AUGMENTATIONS
from pipeline.train.averaging import weight_average
from pipeline.train.losses import LOSSES
from pipeline.train.optim import Schedule, make_optimizer


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float


@dataclass
class FitResult:
    val_accuracy: float
    val_loss: float
    params: int
    epochs: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0
    chosen_epoch: int = 0  # the epoch whose weights the model holds (the last, or the best)
    trained_epochs: float = 0.0  # epochs this call trained (a resumed training counts only its own)
    state: bytes | None = None  # with keep_state: what `resume` needs to continue


def evaluate_split(model: torch.nn.Module, split: Split, device: torch.device) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on a split; cross-entropy whatever the training loss,
    so candidates trained with different criteria are compared on one scale."""
    logits = predict_logits(model, split.images, device)
    labels = split.labels
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    loss = F.cross_entropy(logits, labels).item()
    return accuracy, loss


def use_channels_last(input_shape) -> bool:
    """NHWC suits cuDNN and oneDNN alike: on the CPU it halves max-pool and speeds conv
    forward+backward by about a third on 32x32 inputs. Tiny maps (digits' 8x8) gain nothing."""
    return input_shape[-1] >= 16


def train_steps(
    model: Net,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    genome: Mapping,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    batch_size: int,
    order: torch.Tensor,
    first: int,
    stop: int,
    generator: torch.Generator,
    device: torch.device,
    bf16: bool = False,
    deadline: float | None = None,
    total: torch.Tensor | None = None,
    epoch: int = 0,
    average: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Steps [first, stop) of epoch `epoch` walking `order` (full batches only); adds each
    loss to `total` (a device tensor, the epoch's running sum, so an epoch split in two sums
    in the same order as one) and returns it: reading it is the caller's one sync per epoch.
    `average` (an `AveragedModel`) is updated after every optimizer step. Past `deadline`
    (a `time.perf_counter()` value) it raises `CandidateFailure("timeout")`; reading the
    clock needs no device sync."""
    model.train()
    channels_last = next(model.parameters()).is_contiguous(memory_format=torch.channels_last) and train_x.dim() == 4
    criterion = LOSSES[genome["loss"]]
    augment = AUGMENTATIONS[genome["augment"]]
    total = torch.zeros((), device=device) if total is None else total
    for step in range(first, stop):
        index = order[step * batch_size : (step + 1) * batch_size]
        inputs = augment(train_x[index], generator, index, epoch)  # uint8: the model's Normalize scales it
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with autocast(device, bf16):
            embedding = model.embed_bytes(inputs)
            logits = model.classifier(embedding)
        loss = criterion(logits.float(), train_y[index], embedding.float(), genome)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if average is not None:
            average.update_parameters(model)
        schedule.after_batch()
        total += loss.detach()
        if deadline is not None and time.perf_counter() > deadline:
            raise CandidateFailure("timeout", f"still training after the candidate_timeout, at step {step + 1} of {stop}")
    return total


def train_one_epoch(model, optimizer, schedule, genome, train_x, train_y, batch_size, generator, device, bf16=False,
                    deadline=None) -> torch.Tensor:
    """One pass over full batches of a fresh seeded permutation (the throughput benchmark's unit)."""
    steps = max(1, len(train_y) // batch_size)
    order = torch.randperm(len(train_y), device=device, generator=generator)
    return train_steps(model, optimizer, schedule, genome, train_x, train_y, batch_size, order, 0, steps, generator,
                       device, bf16, deadline)


@dataclass
class Position:
    """Where a training is: global step, the permutation of the current epoch and the
    epoch's loss so far; with the optimizer, scheduler and RNG states, a resumable point."""

    step: int = 0
    order: torch.Tensor | None = None
    total: torch.Tensor | None = None


def save_state(model, optimizer, schedule, generator, position: Position, records: list[EpochRecord],
               average=None) -> bytes:
    buffer = io.BytesIO()
    torch.save({
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "average": average.state_dict() if average is not None else None,
        "scheduler": schedule.scheduler.state_dict() if schedule.scheduler else None, "schedule_steps": schedule.steps,
        "generator": generator.get_state(), "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if generator.device.type == "cuda" else None,
        "step": position.step, "order": position.order, "total": position.total,
        "records": [vars(r) for r in records],
    }, buffer)
    return buffer.getvalue()


def load_state(state: bytes, model, optimizer, schedule, generator, average=None) -> tuple[Position, list[EpochRecord]]:
    saved = torch.load(io.BytesIO(state), map_location=generator.device, weights_only=True)
    model.load_state_dict(saved["model"])
    if average is not None:
        average.load_state_dict(saved["average"])
    optimizer.load_state_dict(saved["optimizer"])
    if schedule.scheduler is not None:
        schedule.scheduler.load_state_dict(saved["scheduler"])
    schedule.steps = saved["schedule_steps"]
    generator.set_state(saved["generator"].cpu())
    torch.set_rng_state(saved["cpu_rng"].cpu())
    if saved["cuda_rng"] is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"].cpu())
    records = [EpochRecord(**r) for r in saved["records"]]
    return Position(saved["step"], saved["order"], saved["total"]), records


#: Training images the patch-whitening stem is computed from (the first ones of the split).
WHITENING_IMAGES = 1000


def _built_model(genome: Mapping, data: PreparedData, device: torch.device,
                 max_params: int | None) -> tuple[Net, int]:
    """The genome's net on `device`; an architecture the builder refuses, or one over
    `max_params`, is a recorded candidate failure, not an error."""
    try:
        model = build_model(genome, data.input_shape, data.num_classes, data.mean, data.std)
    except InvalidArchitecture as err:
        raise CandidateFailure("invalid_architecture", str(err)) from None
    params = count_parameters(model)
    if max_params is not None and params > max_params:
        raise CandidateFailure("too_large", f"{params} parameters > search.max_params {max_params}")
    if model.whitening is not None:
        sample = data.train.images[:WHITENING_IMAGES]
        model.whitening.initialise(model.normalize.from_bytes(sample))
    model = model.to(device)
    if use_channels_last(data.input_shape):
        model = model.to(memory_format=torch.channels_last)
    return model, params


def _finite(loss: float, what: str, when: str) -> float:
    """`loss`, or a recorded `nan_loss` failure when it is NaN or infinite."""
    if not math.isfinite(loss):
        raise CandidateFailure("nan_loss", f"{what} became {loss} {when}")
    return loss


def fit(
    genome: Mapping,
    data: PreparedData,
    epochs: float,
    seed: int,
    device: torch.device,
    *,
    bf16: bool = False,
    max_params: int | None = None,
    time_limit: float | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    select: str = "last",
    horizon: int | None = None,
    resume: bytes | None = None,
    keep_state: bool = False,
) -> tuple[Net, FitResult]:
    """Train `genome` on data.train for `epochs` (a fraction ends inside an epoch),
    scoring on data.val after every epoch and at the end. The learning-rate schedule spans
    `horizon` epochs (default: `epochs`); `resume` continues a state kept by an earlier
    call with the same genome, seed and horizon. `select="best"` returns the weights of the
    epoch with the best validation accuracy (then the lower validation loss), as Keras'
    `restore_best_weights`; "last" the last. With the `ema` gene the averaged weights are
    the ones scored, selected and returned."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    model, params = _built_model(genome, data, device, max_params)
    optimizer = make_optimizer(genome, model.parameters())
    train_x = data.train.images.to(device)
    train_y = data.train.labels.to(device)
    count = len(train_y)
    batch_size = min(genome["batch_size"], count)
    steps = count // batch_size
    schedule = Schedule(genome, optimizer, horizon or math.ceil(epochs), steps)
    generator = torch.Generator(device=device).manual_seed(seed)
    average = weight_average(model, genome["ema"]) if genome["ema"] > 0 else None
    scored = average.module if average is not None else model
    result = FitResult(val_accuracy=0.0, val_loss=math.inf, params=params)
    position = Position()
    if resume is not None:
        position, result.epochs = load_state(resume, model, optimizer, schedule, generator, average)
    end = max(1, round(epochs * steps))
    first_step = position.step
    best: tuple[tuple[float, float], int, dict] | None = None
    deadline = started + time_limit if time_limit else None
    while position.step < end:
        epoch, within = divmod(position.step, steps)
        if within == 0:
            position.order = torch.randperm(count, device=device, generator=generator)
            position.total = torch.zeros((), device=device)
        stop = min(end - epoch * steps, steps)
        train_steps(model, optimizer, schedule, genome, train_x, train_y, batch_size, position.order, within, stop,
                    generator, device, bf16, deadline, position.total, epoch, average)
        position.step = epoch * steps + stop
        if stop < steps:
            break  # the budget ends inside this epoch
        train_loss = _finite(position.total.item() / steps, "training loss", f"in epoch {epoch + 1}")
        val_accuracy, val_loss = evaluate_split(scored, data.val, device)
        _finite(val_loss, "validation loss", f"in epoch {epoch + 1}")
        schedule.after_epoch(val_loss)
        record = EpochRecord(epoch + 1, train_loss, val_loss, val_accuracy)
        result.epochs.append(record)
        if select == "best" and (best is None or (val_accuracy, -val_loss) > best[0]):
            best = ((val_accuracy, -val_loss), epoch + 1, {k: v.detach().clone() for k, v in scored.state_dict().items()})
        if on_epoch:
            on_epoch(record)
    result.trained_epochs = (position.step - first_step) / steps
    if keep_state:
        result.state = save_state(model, optimizer, schedule, generator, position, result.epochs, average)
    result.chosen_epoch = len(result.epochs)
    if best is not None:
        scored.load_state_dict(best[2])
        result.chosen_epoch = best[1]
    if position.step % steps or not result.epochs:  # ended inside an epoch: score it here
        after = f"after {position.step} steps"
        _finite(position.total.item() / max(1, position.step % steps), "training loss", after)
        result.val_accuracy, result.val_loss = evaluate_split(scored, data.val, device)
        _finite(result.val_loss, "validation loss", after)
    else:
        chosen = result.epochs[result.chosen_epoch - 1]
        result.val_accuracy, result.val_loss = chosen.val_accuracy, chosen.val_loss
    result.seconds = time.perf_counter() - started
    return scored, result
