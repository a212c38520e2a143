"""One budget for the pipeline: the search stops at its share, the final training's epochs
follow from what is left and the chosen genome's cost, and the default unit reproduces."""
from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

from pipeline.data.prepare import load_prepared
from pipeline.errors import ConfigError
from pipeline.genome.files import load_best_yaml
from pipeline.params import params_from_dict
from pipeline.train.budget import BudgetReport, final_epoch_cost, final_epochs
from tests.helpers import TINY_SPACE


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AUTOML_STORE", str(tmp_path / "store"))
    return tmp_path


def budget_params(total: float, share: float = 0.5, **train) -> object:
    return params_from_dict({
        "seed": 1, "space": TINY_SPACE, "budget": {"total": total, "search_share": share},
        "search": {"algorithm": "surrogate", "population": 4, "offspring": 2, "generations": 1000, "epochs": 1,
                   "backend": "serial", "portfolio": False},
        "train": {"epochs": "auto", "refit": True, **train},
        "runtime": {"device": "cpu", "threads": 1}, "mlflow": {"experiment": "budget"}})


def run_stages(params) -> None:
    from stages import data, search, train

    data.run(params)
    search.run(params)
    train.run(params)


def history(folder) -> list[dict]:
    with open(folder / "search" / "history.csv") as handle:
        return list(csv.DictReader(handle))


def test_the_search_spends_its_share_and_the_final_training_gets_the_rest(in_tmp):
    params = budget_params(total=16.0, share=0.5)
    run_stages(params)
    report = BudgetReport(**json.loads((in_tmp / "search" / "budget.json").read_text()))
    rows = history(in_tmp)
    costs = [float(r["cost"]) for r in rows]
    # history.csv and budget.json each round to 6 decimals: the sums agree to that per row
    assert report.search_spent == pytest.approx(sum(costs), abs=1e-6 * (len(rows) + 1))
    # stopped by its 50% share (8), which it never overspends: each candidate's cost is
    # counted from its FLOPs before it trains; the next one did not fit
    assert sum(costs) <= 8.0 and json.loads((in_tmp / "metrics" / "search.json").read_text())["stop_reason"] == \
        "max_cost (8) reached"
    genome = load_best_yaml(in_tmp / "search" / "best.yaml")
    epoch_cost = final_epoch_cost(genome, load_prepared(in_tmp / "data" / "prepared"), refit=True)
    trained = json.loads((in_tmp / "metrics" / "train.json").read_text())
    assert trained["epochs"] == max(1, math.floor((16.0 - report.search_spent) / epoch_cost))
    assert trained["epochs"] > 1


def test_an_exhausted_budget_stops_the_search_cleanly_and_still_trains_a_model(in_tmp):
    run_stages(budget_params(total=0.01))
    rows = history(in_tmp)
    assert len(rows) == 1  # nothing fits: the first candidate alone trains, so the search has an answer
    summary = json.loads((in_tmp / "metrics" / "search.json").read_text())
    assert summary["stop_reason"].startswith("max_cost")
    assert json.loads((in_tmp / "metrics" / "train.json").read_text())["epochs"] == 1
    assert (in_tmp / "models" / "model.pt").stat().st_size > 0


def test_final_epochs_follow_the_budget_left_and_the_units_speed():
    reference = BudgetReport("reference_seconds", 100.0, 0.5, 52.0, 3.0)
    assert final_epochs(reference, 4.0).epochs == 12  # 48 left / 4 per epoch
    wall = BudgetReport("seconds", 100.0, 0.5, 52.0, 3.0)  # this machine: 3 s per reference second
    assert final_epochs(wall, 4.0).epochs == 4  # 48 s left / 12 s per epoch
    assert final_epochs(BudgetReport("reference_seconds", 10.0, 0.5, 11.0, 1.0), 4.0).epochs == 1


def test_the_default_unit_reproduces_the_search_and_the_final_training(tmp_path, monkeypatch):
    outputs = []
    for attempt in ("first", "second"):
        folder = tmp_path / attempt
        folder.mkdir()
        monkeypatch.chdir(folder)
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        monkeypatch.setenv("AUTOML_STORE", str(folder / "store"))  # nothing shared: both train everything
        run_stages(budget_params(total=12.0))
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in history(folder)]
        train = {k: v for k, v in json.loads((folder / "metrics" / "train.json").read_text()).items() if k != "seconds"}
        # budget.json is train's dependency: no wall-clock value in it, so train reruns only on a change
        outputs.append(((folder / "search" / "best.yaml").read_text(), rows, train,
                        (folder / "search" / "budget.json").read_bytes()))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("values, message", [
    ({"budget": {"total": -1}}, "budget.total: -1.0 is out of range"),
    ({"budget": {"unit": "minutes"}}, "budget.unit: unknown choice 'minutes'"),
    ({"budget": {"search_share": 1.5}}, "budget.search_share: 1.5 is out of range"),
    ({"budget": {"total": 0}, "train": {"epochs": "auto"}}, "train.epochs: auto needs a pipeline budget"),
    ({"train": {"epochs": "lots"}}, "train.epochs: expected a number of epochs or 'auto'"),
])
def test_bad_budget_values_are_refused_in_one_line_naming_the_key(values, message):
    with pytest.raises(ConfigError) as caught:
        params_from_dict(yaml.safe_load(json.dumps(values)))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
