"""The candidate trainer: whole splits as tensors on the device, no per-sample DataLoader.

Batches are index slices of a seeded permutation; augmentation runs on the batch on the
device; the loss is summed on the device and read once per epoch, so a CUDA epoch has no
host sync inside it. A NaN/inf loss or a too-large network raises `CandidateFailure` with a
reason the search records. `fit` is deterministic on CPU for a given seed.
"""
from __future__ import annotations

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


def train_one_epoch(
    model: Net,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    genome: Mapping,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    bf16: bool = False,
    deadline: float | None = None,
) -> torch.Tensor:
    """One pass over full batches of a seeded permutation; returns the summed loss as a
    device tensor (reading it is the caller's one sync per epoch). Past `deadline` (a
    `time.perf_counter()` value) it raises `CandidateFailure("timeout")`; reading the clock
    needs no device sync."""
    model.train()
    channels_last = next(model.parameters()).is_contiguous(memory_format=torch.channels_last) and train_x.dim() == 4
    criterion = LOSSES[genome["loss"]]
    augment = AUGMENTATIONS[genome["augment"]]
    count = len(train_y)
    steps = max(1, count // batch_size)
    order = torch.randperm(count, device=device, generator=generator)
    total = torch.zeros((), device=device)
    for step in range(steps):
        index = order[step * batch_size : (step + 1) * batch_size]
        inputs = augment(train_x[index], generator)  # uint8: the model's Normalize scales it
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with autocast(device, bf16):
            embedding = model.embed_bytes(inputs)
            logits = model.classifier(embedding)
        loss = criterion(logits.float(), train_y[index], embedding.float(), genome)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.after_batch()
        total += loss.detach()
        if deadline is not None and time.perf_counter() > deadline:
            raise CandidateFailure("timeout", f"still training after the candidate_timeout, at step {step + 1} of {steps}")
    return total


def fit(
    genome: Mapping,
    data: PreparedData,
    epochs: int,
    seed: int,
    device: torch.device,
    *,
    bf16: bool = False,
    max_params: int | None = None,
    time_limit: float | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[Net, FitResult]:
    """Train `genome` for `epochs` on data.train, scoring on data.val after every epoch."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    try:
        model = build_model(genome, data.input_shape, data.num_classes, data.mean, data.std)
    except InvalidArchitecture as err:
        raise CandidateFailure("invalid_architecture", str(err)) from None
    params = count_parameters(model)
    if max_params is not None and params > max_params:
        raise CandidateFailure("too_large", f"{params} parameters > search.max_params {max_params}")
    model = model.to(device)
    if use_channels_last(data.input_shape):
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(genome, model.parameters())
    train_x = data.train.images.to(device)
    train_y = data.train.labels.to(device)
    count = len(train_y)
    batch_size = min(genome["batch_size"], count)
    steps = count // batch_size
    schedule = Schedule(genome, optimizer, epochs, steps)
    generator = torch.Generator(device=device).manual_seed(seed)
    result = FitResult(val_accuracy=0.0, val_loss=math.inf, params=params)
    for epoch in range(1, epochs + 1):
        deadline = started + time_limit if time_limit else None
        total = train_one_epoch(model, optimizer, schedule, genome, train_x, train_y, batch_size, generator, device, bf16,
                                deadline)
        train_loss = total.item() / steps
        if not math.isfinite(train_loss):
            raise CandidateFailure("nan_loss", f"training loss became {train_loss} in epoch {epoch}")
        val_accuracy, val_loss = evaluate_split(model, data.val, device)
        if not math.isfinite(val_loss):
            raise CandidateFailure("nan_loss", f"validation loss became {val_loss} in epoch {epoch}")
        schedule.after_epoch(val_loss)
        record = EpochRecord(epoch, train_loss, val_loss, val_accuracy)
        result.epochs.append(record)
        if on_epoch:
            on_epoch(record)
    result.val_accuracy, result.val_loss = result.epochs[-1].val_accuracy, result.epochs[-1].val_loss
    result.seconds = time.perf_counter() - started
    return model, result
