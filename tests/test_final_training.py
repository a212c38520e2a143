"""Final training: `train.select: best` returns the best validation epoch's weights, and
`train.refit` retrains on train + validation for the chosen number of epochs."""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading

import pytest
import torch

from pipeline.errors import CandidateFailure, ConfigError
from pipeline.genome.genome import default_genome
from pipeline.params import params_from_dict
from pipeline.train.final import train_final, with_validation_in_training
from pipeline.train.fit import evaluate_split, fit

CPU = torch.device("cpu")
EPOCHS = 6
SEED = 0  # with this seed, validation accuracy peaks at epoch 4 of 6: "best" differs from "last"


@pytest.fixture(scope="module")
def genome() -> dict:
    genome = default_genome()
    genome.update(width=8, stages=2, lr=5e-2, batch_size=16, scheduler="none", optimizer="sgd_momentum")
    return genome


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_select_best_returns_the_weights_of_the_best_validation_epoch(genome, tiny_digits):
    model, result = fit(genome, tiny_digits, EPOCHS, SEED, CPU, select="best")
    ranking = [(record.val_accuracy, -record.val_loss) for record in result.epochs]
    best_epoch = ranking.index(max(ranking)) + 1
    assert 1 < best_epoch < EPOCHS, "the setup must make the best epoch differ from the last"
    assert result.chosen_epoch == best_epoch
    assert (result.val_accuracy, result.val_loss) == (result.epochs[best_epoch - 1].val_accuracy,
                                                      result.epochs[best_epoch - 1].val_loss)
    stopped_there, _ = fit(genome, tiny_digits, best_epoch, SEED, CPU, horizon=EPOCHS)
    assert same_weights(model, stopped_there)  # the very weights of that epoch, buffers included
    assert evaluate_split(model, tiny_digits.val, CPU) == (result.val_accuracy, result.val_loss)


def test_select_last_returns_the_last_epoch(genome, tiny_digits):
    model, result = fit(genome, tiny_digits, EPOCHS, SEED, CPU, select="last")
    assert result.chosen_epoch == EPOCHS
    assert result.val_accuracy == result.epochs[-1].val_accuracy
    best, _ = fit(genome, tiny_digits, EPOCHS, SEED, CPU, select="best")
    assert not same_weights(model, best)


def test_refit_trains_on_train_and_validation_for_the_chosen_epochs(genome, tiny_digits):
    model, final = train_final(genome, tiny_digits, EPOCHS, SEED, CPU, select="best", refit=True)
    assert final.refit and final.epochs == final.selection.chosen_epoch < EPOCHS
    merged = with_validation_in_training(tiny_digits)
    assert len(merged.train) == len(tiny_digits.train) + len(tiny_digits.val)
    assert torch.equal(merged.train.labels[len(tiny_digits.train):], tiny_digits.val.labels)
    assert merged.mean == tiny_digits.mean and merged.std == tiny_digits.std
    expected, refit_run = fit(genome, merged, final.epochs, SEED, CPU)
    assert len(refit_run.epochs) == final.epochs
    assert same_weights(model, expected)


def test_without_refit_the_selected_model_is_returned(genome, tiny_digits):
    model, final = train_final(genome, tiny_digits, EPOCHS, SEED, CPU, select="best", refit=False)
    selected, result = fit(genome, tiny_digits, EPOCHS, SEED, CPU, select="best")
    assert not final.refit and final.epochs == result.chosen_epoch
    assert same_weights(model, selected)


def test_side_by_side_selection_and_refit_equal_one_after_the_other_on_the_same_threads(genome, tiny_digits):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # side by side: one thread each
        model, final = train_final(genome, tiny_digits, EPOCHS, SEED, CPU, select="last", refit=True,
                                   side_by_side=True)
        assert torch.get_num_threads() == 2  # restored
        torch.set_num_threads(1)
        expected, sequential = train_final(genome, tiny_digits, EPOCHS, SEED, CPU, select="last", refit=True)
    finally:
        torch.set_num_threads(threads)
    assert final.refit and final.epochs == sequential.epochs == EPOCHS
    assert final.selection.epochs == sequential.selection.epochs  # the selecting run's curve, epoch by epoch
    assert same_weights(model, expected)  # the refit, trained in the other process
    refit_only, _ = fit(genome, with_validation_in_training(tiny_digits), EPOCHS, SEED, CPU)
    assert same_weights(model, refit_only)


def test_a_failing_final_training_side_by_side_is_a_candidate_failure_and_leaves_no_worker(tiny_digits):
    exploding = default_genome()
    exploding.update(width=8, stages=1, lr=1e6, optimizer="sgd", scheduler="none", norm="none", batch_size=16)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(CandidateFailure) as caught:
            train_final(exploding, tiny_digits, 3, SEED, CPU, select="last", refit=True, side_by_side=True)
    finally:
        torch.set_num_threads(threads)
    assert caught.value.reason == "nan_loss"
    assert multiprocessing.active_children() == []
    crossed = pickle.loads(pickle.dumps(CandidateFailure("nan_loss", "loss became nan")))  # as the worker's would
    assert (crossed.reason, crossed.detail) == ("nan_loss", "loss became nan")


def test_a_refit_process_that_dies_is_a_crashed_failure_not_a_hang(genome, tiny_digits):
    def kill_the_refit_process():
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

    timer = threading.Timer(1.0, kill_the_refit_process)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        timer.start()
        with pytest.raises(CandidateFailure) as caught:
            train_final(genome, tiny_digits, 40, SEED, CPU, select="last", refit=True, side_by_side=True)
    finally:
        timer.join()
        torch.set_num_threads(threads)
    assert caught.value.reason == "crashed" and "exit code -9" in str(caught.value)


@pytest.mark.parametrize("key,value,expected", [
    ("select", "first", r"train\.select: unknown choice 'first'; allowed: last, best"),
    ("refit", "maybe", r"train\.refit"),
])
def test_bad_final_training_options_are_refused_naming_the_key(key, value, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        params_from_dict({"train": {key: value}})
    assert "\n" not in str(caught.value)
