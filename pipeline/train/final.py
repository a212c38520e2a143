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

import io
import multiprocessing
import sys
from dataclasses import dataclass, replace
from typing import Callable, Mapping, TextIO

import torch
from tqdm import tqdm

from pipeline.data.types import PreparedData, Split
from pipeline.errors import CandidateFailure
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


def _refit_worker(conn, genome: Mapping, data: PreparedData, epochs: int, seed: int, threads: int) -> None:
    """The refit on train + validation on `threads` CPU threads, in a spawned process; sends
    ("model", the trained net's saved state_dict), or ("failure", CandidateFailure) when it cannot be trained."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        model, _ = fit(genome, with_validation_in_training(data), epochs, seed, torch.device("cpu"))
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)  # bytes, not torch's shared-memory handles, which die with this process
        conn.send(("model", buffer.getvalue()))
    except CandidateFailure as failure:
        conn.send(("failure", failure))
    except Exception as err:  # noqa: BLE001 - whatever it was, the parent reports it as this run's failure
        conn.send(("failure", CandidateFailure("exception", f"{type(err).__name__}: {err}")))
    finally:
        conn.close()


def _selection_and_refit_side_by_side(genome: Mapping, data: PreparedData, epochs: int, seed: int,
                                      on_epoch) -> tuple[torch.nn.Module, FinalResult]:
    """The selecting run here and the refit in a spawned process, each on half the threads
    (`select: last`: the refit trains for `epochs` whatever the selecting run scores). A
    refit process that dies (killed, out of memory) is a `crashed` failure, not a hang."""
    threads = torch.get_num_threads()
    half = max(1, threads // 2)
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_refit_worker, args=(sender, dict(genome), data, epochs, seed, half), daemon=True)
    worker.start()
    sender.close()  # the worker holds the only sending end: its death ends the pipe
    try:
        torch.set_num_threads(half)
        model, selection = fit(genome, data, epochs, seed, torch.device("cpu"), on_epoch=on_epoch)
        try:
            kind, value = receiver.recv()
        except EOFError:
            worker.join(5)
            raise CandidateFailure("crashed", f"the refit process ended with exit code {worker.exitcode}") from None
        if kind == "failure":
            raise value
        model.load_state_dict(torch.load(io.BytesIO(value), weights_only=True))  # the selecting run's net, refit weights
    finally:
        torch.set_num_threads(threads)
        receiver.close()
        if worker.is_alive():  # the selecting run failed or was interrupted: do not wait for the refit
            worker.terminate()
        worker.join()
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
