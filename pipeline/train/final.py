"""The final training of the chosen genome: which epoch's weights to keep (`select`), and
whether to train again on training + validation data (`refit`).

`select: best` keeps the weights of the epoch with the best validation accuracy (Keras'
`restore_best_weights`); `last` keeps the last epoch's. `refit: true` then trains a fresh
model on train + validation for the chosen number of epochs (auto-sklearn's and
AutoGluon's refit): it sees 15% more data but has no held-out score of its own, so the
reported validation numbers are those of the selecting run.
"""
from __future__ import annotations

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
                on_refit_epoch: Callable[[EpochRecord], None] | None = None) -> tuple[torch.nn.Module, FinalResult]:
    model, selection = fit(genome, data, epochs, seed, device, bf16=bf16, on_epoch=on_epoch, select=select)
    if not refit:
        return model, FinalResult(selection, selection.chosen_epoch, refit=False)
    chosen = selection.chosen_epoch
    model, _ = fit(genome, with_validation_in_training(data), chosen, seed, device, bf16=bf16, on_epoch=on_refit_epoch)
    return model, FinalResult(selection, chosen, refit=True)


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
