"""The final training of the chosen genome: which epoch's weights to keep (`select`), and
whether to train again on training + validation data (`refit`).

`select: best` keeps the weights of the epoch with the best validation accuracy (Keras'
`restore_best_weights`); `last` keeps the last epoch's. `refit: true` then trains a fresh
model on train + validation for the chosen number of epochs (auto-sklearn's and
AutoGluon's refit): it sees 15% more data but has no held-out score of its own, so the
reported validation numbers are those of the selecting run.

With `select: last` the refit does not depend on the selecting run, so on the CPU
`side_by_side` trains both at once in two processes, each on half the threads: small nets
run no faster on two threads than on one (digits' default winner: 0.29 s per epoch on
two, 0.23 on one), so on two cores the final training takes about half as long. The
result equals the one-after-the-other training on the same number of threads per run.
"""
from __future__ import annotations

import multiprocessing
import sys
from dataclasses import dataclass, replace
from typing import Callable, Mapping, TextIO

import torch
from tqdm import tqdm

from pipeline.data.types import PreparedData, Split
from pipeline.train.fit import EpochRecord, FitResult, fit


@dataclass
class FinalResult:
    selection: FitResult  # the run on the training split, scored on validation
    epochs: int  # epochs of the model returned (the chosen epoch, retrained when refit)
    refit: bool


def with_validation_in_training(data: PreparedData) -> PreparedData:
    """Train on train + validation (statistics stay those of the training split)."""
    merged = Split(torch.cat([data.train.images, data.val.images]), torch.cat([data.train.labels, data.val.labels]))
    return replace(data, train=merged)


def train_final(genome: Mapping, data: PreparedData, epochs: int, seed: int, device: torch.device, *, select: str,
                refit: bool, bf16: bool = False, on_epoch: Callable[[EpochRecord], None] | None = None,
                on_refit_epoch: Callable[[EpochRecord], None] | None = None,
                side_by_side: bool = False) -> tuple[torch.nn.Module, FinalResult]:
    if refit and select == "last" and side_by_side and device.type == "cpu" and torch.get_num_threads() > 1:
        return _selection_and_refit_side_by_side(genome, data, epochs, seed, on_epoch)
    model, selection = fit(genome, data, epochs, seed, device, bf16=bf16, on_epoch=on_epoch, select=select)
    if not refit:
        return model, FinalResult(selection, selection.chosen_epoch, refit=False)
    chosen = selection.chosen_epoch
    model, _ = fit(genome, with_validation_in_training(data), chosen, seed, device, bf16=bf16, on_epoch=on_refit_epoch)
    return model, FinalResult(selection, chosen, refit=True)


def _refit(genome: Mapping, data: PreparedData, epochs: int, seed: int, threads: int) -> torch.nn.Module:
    """The refit on train + validation, in a worker process on `threads` CPU threads."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    model, _ = fit(genome, with_validation_in_training(data), epochs, seed, torch.device("cpu"))
    return model


def _selection_and_refit_side_by_side(genome: Mapping, data: PreparedData, epochs: int, seed: int,
                                      on_epoch) -> tuple[torch.nn.Module, FinalResult]:
    """The selecting run here and the refit in a spawned process, each on half the threads
    (`select: last`: the refit trains for `epochs` whatever the selecting run scores)."""
    threads = torch.get_num_threads()
    half = max(1, threads // 2)
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        refitted = pool.apply_async(_refit, (dict(genome), data, epochs, seed, half))
        torch.set_num_threads(half)
        _, selection = fit(genome, data, epochs, seed, torch.device("cpu"), on_epoch=on_epoch)
        model = refitted.get()
        pool.close()
    finally:
        pool.terminate()  # an interrupted or failed selecting run does not wait for the refit
        torch.set_num_threads(threads)
    return model, FinalResult(selection, selection.chosen_epoch, refit=True)


class EpochProgress:
    """A tqdm bar over epochs on a terminal; without one, a line every tenth of the run."""

    def __init__(self, epochs: int, label: str = "train", stream: TextIO = sys.stderr):
        self.epochs, self.label = epochs, label
        self.every = max(1, epochs // 10)
        live = hasattr(stream, "isatty") and stream.isatty()
        self.bar = tqdm(total=epochs, desc=label, unit="epoch", file=stream, disable=not live, leave=False,
                        dynamic_ncols=True)

    def __call__(self, record: EpochRecord) -> None:
        if not self.bar.disable:
            self.bar.set_postfix_str(f"loss {record.train_loss:.4f} val {record.val_accuracy:.4f}", refresh=False)
            self.bar.update()
        elif record.epoch % self.every == 0 or record.epoch == self.epochs:
            print(f"{self.label}: epoch {record.epoch}/{self.epochs} loss {record.train_loss:.4f} "
                  f"val {record.val_accuracy:.4f}", flush=True)

    def close(self) -> None:
        self.bar.close()
