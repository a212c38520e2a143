"""A search is never thrown away: resumed, extended, shortened or changed, it reuses every
result the candidate store holds and ends exactly where a fresh search would."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.genome.problem import TRAINER_SOURCES, trainer_version
from pipeline.search.problem import Task
from pipeline.search.record import load_record
from pipeline.search.space import genome_key
from pipeline.search.store import ResultStore, store_info
from tests.helpers import ROOT, TINY_SPACE, comparable, search, tiny_params


class Interrupted(Exception):
    pass


def trained_generations(outcome) -> set[int]:
    """The generations of the results that were trained (not taken from the store)."""
    reused = {id(r) for r in getattr(outcome, "_reused_results", [])}
    return {g for g, _, r in outcome.history if id(r) not in reused}


def run(params, data, store, **kwargs):
    reused = []

    def note(generation, rung, result, from_store):
        if from_store:
            reused.append(result)

    outcome = search(params, data, store_root=store, on_result=note, **kwargs)
    outcome._reused_results = reused
    return outcome


def test_extending_generations_trains_only_the_new_ones_and_equals_a_fresh_run(tiny_digits, tmp_path):
    store = tmp_path / "store"
    short = run(tiny_params(generations=2), tiny_digits, store)
    assert short.reused == 0
    extended = run(tiny_params(generations=4), tiny_digits, store)
    fresh = search(tiny_params(generations=4), tiny_digits)
    assert comparable(extended) == comparable(fresh) and extended.best_genome == fresh.best_genome
    assert extended.reused == len(short.history)
    assert trained_generations(extended) == {3, 4}
    shortened = run(tiny_params(generations=1), tiny_digits, store)
    assert shortened.trained == 0 and comparable(shortened) == comparable(search(tiny_params(generations=1), tiny_digits))


@pytest.mark.parametrize("small,large", [({"max_evaluations": 9}, {"max_evaluations": 16}),
                                         ({"max_epochs": 8}, {"max_epochs": 15}),
                                         ({"patience": 1, "generations": 30}, {"patience": 3, "generations": 30})])
def test_raising_a_budget_continues_and_equals_a_fresh_run(tiny_digits, tmp_path, small, large):
    store = tmp_path / "store"
    first = run(tiny_params(**small), tiny_digits, store)
    raised = run(tiny_params(**large), tiny_digits, store)
    assert comparable(raised) == comparable(search(tiny_params(**large), tiny_digits))
    assert raised.reused == len(first.history) and raised.trained == len(raised.history) - len(first.history)


def test_a_search_stopped_mid_generation_resumes_to_the_uninterrupted_result(tiny_digits, tmp_path):
    whole = search(tiny_params(generations=2), tiny_digits)
    store, seen = tmp_path / "store", []

    def stop_in_generation_one(generation, rung, result, reused):
        seen.append(result)
        if generation == 1 and len(seen) == 9:  # 3 of generation 1's 6 candidates are stored
            raise Interrupted

    with pytest.raises(Interrupted):
        search(tiny_params(generations=2), tiny_digits, store_root=store, on_result=stop_in_generation_one)
    resumed = run(tiny_params(generations=2), tiny_digits, store)
    assert comparable(resumed) == comparable(whole)
    assert resumed.reused >= 6  # generation 0, and what generation 1 finished before the stop


def test_another_algorithm_or_a_narrowed_space_reuses_what_it_shares(tiny_digits, tmp_path):
    store = tmp_path / "store"
    run(tiny_params(generations=2), tiny_digits, store)
    other = run(tiny_params(algorithm="random", generations=2), tiny_digits, store)
    assert other.reused == 6  # the same seed samples the same first generation
    narrowed_space = dict(TINY_SPACE, optimizer=["adam"])
    narrowed = run(tiny_params(narrowed_space, generations=2), tiny_digits, store)
    fresh = search(tiny_params(narrowed_space, generations=2), tiny_digits)
    assert comparable(narrowed) == comparable(fresh)
    assert narrowed.reused > 0 and narrowed.trained < fresh.trained


def test_a_changed_result_key_is_named_and_a_same_search_reuses_everything(tiny_digits, tmp_path):
    store, record = tmp_path / "store", tmp_path / "record.json"
    messages = []
    search(tiny_params(generations=1), tiny_digits, store_root=store, record_path=record, log=messages.append)
    assert load_record(record).generation == 1 and not messages
    again = search(tiny_params(generations=1), tiny_digits, store_root=store, record_path=record, log=messages.append)
    assert again.trained == 0 and "the same search as last time" in messages[-1]
    search(tiny_params(generations=1, options={"crossover": 0.9}), tiny_digits, store_root=store, record_path=record,
           log=messages.append)
    assert "search.options.crossover unset -> 0.9" in messages[-1]
    search(tiny_params(generations=1, options={"crossover": 0.9}, workers=2), tiny_digits, store_root=store, record_path=record,
           log=messages.append)
    assert "the same search" in messages[-1]  # where candidates run changes nothing
    narrowed = dict(TINY_SPACE, norm=["batch", "group"])
    search(tiny_params(narrowed, generations=1, options={"crossover": 0.9}, workers=2), tiny_digits, store_root=store,
           record_path=record, log=messages.append)
    assert "space.norm [batch, group, none] -> [batch, group]" in messages[-1]  # genes as written, not reprs


def test_trainer_version_changes_with_any_trainer_source(tmp_path):
    copy = tmp_path / "pipeline"
    shutil.copytree(ROOT / "pipeline", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert trainer_version(copy) == trainer_version()
    for relative in ("train/fit.py", "nn/blocks.py", "genome/catalog.py", "runtime.py"):
        edited = copy / relative
        original = edited.read_text()
        edited.write_text(original + "\n# a comment\n")
        assert trainer_version(copy) != trainer_version(), relative
        edited.write_text(original)
    (copy / "tracking" / "plots.py").write_text("# not trainer code\n")
    assert trainer_version(copy) == trainer_version()
    assert all((ROOT / "pipeline" / path).exists() for path in TRAINER_SOURCES)


WRITER = r"""
import sys
from pipeline.search.problem import Result, Task
from pipeline.search.store import ResultStore
store = ResultStore(sys.argv[1], "fingerprint")
start, count = int(sys.argv[2]), int(sys.argv[3])
for i in range(start, start + count):
    task = Task(f'{{"x": {i}}}', {"x": i}, 1, i)
    store.put(task, Result.of(task, score=i / 1000, curve=[{"epoch": e, "val_accuracy": 0.5} for e in range(200)]))
print("done")
"""


def toy_task(i: int) -> Task:
    return Task(genome_key({"x": i}), {"x": i}, 1, i)


def _writer(store, start, count, env):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(start), str(count)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_writers_lose_nothing(tmp_path, venv_env):
    env = dict(venv_env, PYTHONPATH=str(ROOT))
    store = tmp_path / "store"
    writers = [_writer(store, 0, 400, env), _writer(store, 200, 400, env)]  # 200 keys written by both
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0 and out.strip() == "done", err
    info = store_info(store)
    assert info.entries == 600 and info.stray == 0
    reader = ResultStore(store, "fingerprint")
    assert all(reader.get(toy_task(i)).score == i / 1000 for i in range(600))


def test_a_write_killed_with_sigkill_leaves_a_readable_store(tmp_path, venv_env):
    env = dict(venv_env, PYTHONPATH=str(ROOT))
    store = tmp_path / "store"
    writer = _writer(store, 0, 100_000, env)
    deadline = time.time() + 120
    while store_info(store).entries < 300 and time.time() < deadline:
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=60)
    info = store_info(store)
    assert writer.returncode == -signal.SIGKILL and info.entries >= 300
    for path in store.rglob("*.json"):  # every entry that exists is whole
        assert json.loads(path.read_text())["result"]["genome"]["x"] >= 0
    reader = ResultStore(store, "fingerprint")
    assert sum(reader.get(toy_task(i)) is not None for i in range(info.entries + 50)) >= info.entries - 1


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AUTOML_STORE", raising=False)
    return tmp_path


def stage_params(**search_values):
    from pipeline.params import params_from_dict

    search_values = {"population": 4, "generations": 1, "epochs": 1, "backend": "serial", "portfolio": False,
                     **search_values}
    return params_from_dict({"seed": 2, "space": TINY_SPACE, "search": search_values,
                             "runtime": {"device": "cpu", "threads": 1}, "mlflow": {"experiment": "warm"}})


def first_generation(folder) -> list[str]:
    """The genomes of the first generation in history.csv's order (an incumbent trained
    again appears once)."""
    import csv

    with open(folder / "search" / "history.csv") as handle:
        return list(dict.fromkeys(row["genome_key"] for row in csv.DictReader(handle) if row["generation"] == "0"))


def best_two_of(history: Path) -> list[str]:
    """The keys of the two best distinct genomes in a history.csv: half of a population of 4."""
    import csv

    with open(history) as handle:
        rows = [r for r in csv.DictReader(handle) if not r["failure"]]
    keys = [r["genome_key"] for r in sorted(rows, key=lambda r: -float(r["val_accuracy"]))]
    return list(dict.fromkeys(keys))[:2]


@pytest.mark.slow
def test_warm_start_from_a_file_and_from_an_mlflow_run(in_tmp):
    import mlflow

    from stages import data
    from stages import search as search_stage

    data.run(stage_params())
    search_stage.run(stage_params(generations=2))
    best_two = best_two_of(in_tmp / "search" / "history.csv")
    shutil.copy(in_tmp / "search" / "history.csv", in_tmp / "earlier.csv")

    search_stage.run(stage_params(population=4, warm_start=str(in_tmp / "earlier.csv"), options={"gene_mutation": 0.5}))
    assert first_generation(in_tmp)[:2] == best_two
    summary = json.loads((in_tmp / "metrics" / "search.json").read_text())
    assert summary["reused"] >= 2  # the warm-start genomes were evaluated before: taken from the store

    mlflow.set_tracking_uri(f"sqlite:///{in_tmp / 'mlflow.db'}")
    searches = [r for r in mlflow.search_runs(experiment_names=["warm"], output_format="list")
                if r.data.tags.get("automl.stage") == "search"]
    first_search = min(searches, key=lambda r: r.info.start_time)
    search_stage.run(stage_params(population=4, warm_start=first_search.info.run_id, options={"gene_mutation": 0.4}))
    assert first_generation(in_tmp)[:2] == best_two
    # a pipeline run's id means its latest finished search: here the one just run
    latest_best_two = best_two_of(in_tmp / "search" / "history.csv")
    search_stage.run(stage_params(population=4, warm_start=first_search.data.tags["mlflow.parentRunId"],
                                  options={"gene_mutation": 0.3}))
    assert first_generation(in_tmp)[:2] == latest_best_two


def test_warm_start_genomes_are_not_crowded_out_by_the_portfolio_and_are_counted(in_tmp, capsys):
    import csv

    from stages import data
    from stages import search as search_stage

    data.run(stage_params())
    search_stage.run(stage_params(generations=1))
    shutil.copy(in_tmp / "search" / "history.csv", in_tmp / "earlier.csv")
    with open(in_tmp / "earlier.csv") as handle:
        ranked = sorted((r for r in csv.DictReader(handle) if not r["failure"]), key=lambda r: -float(r["val_accuracy"]))
    best_two = list(dict.fromkeys(r["genome_key"] for r in ranked))[:2]
    capsys.readouterr()
    # population 4 and four portfolio recipes: the first generation grows to hold all six
    search_stage.run(stage_params(population=4, portfolio=True, warm_start=str(in_tmp / "earlier.csv")))
    first = first_generation(in_tmp)
    assert first[:2] == best_two and len(first) == 6
    assert "search: warm start: 2 of 2 genomes evaluated in the first generation" in capsys.readouterr().out


def test_the_portfolio_comes_first_scaled_to_the_data(in_tmp):
    import csv

    from pipeline.data.prepare import load_prepared
    from pipeline.genome.genome import active_genes
    from pipeline.genome.portfolio import portfolio
    from stages import data
    from stages import search as search_stage

    params = stage_params(population=6, portfolio=True)
    data.run(params)
    search_stage.run(params)
    expected = portfolio(params.space, load_prepared(in_tmp / "data" / "prepared").input_shape)
    with open(in_tmp / "search" / "history.csv") as handle:
        first = [json.loads(row["genome"]) for row in csv.DictReader(handle)][: len(expected)]
    assert len(expected) >= 3 and first == [active_genes(g) for g in expected]
    assert {g["stages"] for g in expected} == {2}  # 8x8 digits: two halving stages


def test_warm_start_that_is_neither_file_nor_run_is_one_line(in_tmp):
    from pipeline.errors import UserError
    from stages import data
    from stages import search as search_stage

    data.run(stage_params())
    with pytest.raises(UserError, match="search.warm_start: 'nope.csv' is neither a file nor an MLflow run id"):
        search_stage.run(stage_params(warm_start="nope.csv"))


@pytest.mark.slow
def test_dvc_exp_run_with_more_generations_trains_only_the_new_ones(tmp_path, dvc_env):
    from tests.helpers import TINY, make_project, sh

    project = make_project(tmp_path / "extend", dvc_env, TINY)
    sh(["dvc", "repro"], project, dvc_env)
    before = json.loads((project / "metrics" / "search.json").read_text())
    sh(["git", "add", "-A"], project, dvc_env)
    sh(["git", "commit", "-qm", "one generation"], project, dvc_env)
    out = sh(["dvc", "exp", "run", "-S", "search.generations=3", "-n", "longer"], project, dvc_env)
    after = json.loads((project / "metrics" / "search.json").read_text())
    assert "search.generations 1 -> 3" in out.stdout + out.stderr
    assert after["reused"] == before["evaluations"] and after["trained"] == after["evaluations"] - before["evaluations"]
    assert after["trained"] <= 2 * TINY["search"]["population"]  # generations 2 and 3 only
    info = sh(["automl", "cache", "info"], project, dvc_env)
    assert f"{after['evaluations']} results" in info.stdout
