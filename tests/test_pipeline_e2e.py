"""The whole DAG with real DVC and real MLflow (SQLite) on a temporary copy of the project."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import TINY, history_without_timing, make_project, ran_stages, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, dvc_env):
    path = make_project(tmp_path_factory.mktemp("first"), dvc_env, TINY)
    result = sh(["dvc", "repro"], path, dvc_env)
    assert ran_stages(result.stdout) == {"check", "data", "search", "train", "fuse", "evaluate"}
    (path / "repro.log").write_text(result.stdout + result.stderr)
    return path


def test_a_default_run_prints_no_deprecation_noise(project):
    output = (project / "repro.log").read_text()
    assert "Running stage 'fuse'" in output
    assert "FutureWarning" not in output and "DeprecationWarning" not in output and "TracerWarning" not in output


def test_outputs_and_metrics_exist(project):
    for name in ["data/prepared/train.pt", "search/best.yaml", "search/history.csv", "search/hall_of_fame.json", "search/pareto.csv", "search/checkpoint/latest.json",
                 "models/model.pt", "models/fused.pt", "metrics/plots/search_generations.csv",
                 "metrics/plots/train_curve.csv", "metrics/plots/confusion.csv"]:
        assert (project / name).is_file(), name
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    assert 0.0 <= evaluation["accuracy"] <= 1.0 and "macro_f1" in evaluation
    assert evaluation["accuracy"] == evaluation["unfused_accuracy"]
    fuse = json.loads((project / "metrics/fuse.json").read_text())
    assert fuse["argmax_agreement"] == 1.0 and fuse["max_abs_logit_diff"] < 1e-4
    search = json.loads((project / "metrics/search.json").read_text())
    assert search["evaluations"] == len(history_without_timing(project))


def test_mlflow_holds_parent_stage_and_individual_runs(project):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    experiment = mlflow.MlflowClient().get_experiment_by_name("e2e")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on training runs
    runs = mlflow.search_runs(experiment_names=["e2e"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("automl.pipeline") == "true"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.data.params["search.population"] == "4"
    assert parent.data.tags["automl.params_hash"] and parent.data.tags["mlflow.source.git.commit"] != "unknown"
    stages = {r.data.tags.get("automl.stage"): r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(stages) == {"data", "search", "train", "fuse", "evaluate"}
    assert all(r.info.status == "FINISHED" for r in stages.values())
    individuals = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == stages["search"].info.run_id]
    assert len(individuals) == len(history_without_timing(project))
    assert all("val_accuracy" in r.data.metrics and "optimizer" in r.data.params for r in individuals)
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    assert stages["evaluate"].data.metrics["test_accuracy"] == pytest.approx(evaluation["accuracy"])


def test_second_repro_runs_nothing(project, dvc_env):
    result = sh(["dvc", "repro"], project, dvc_env)
    assert ran_stages(result.stdout) == set()


def test_runtime_keys_rerun_nothing_and_a_source_module_reruns_data(project, dvc_env):
    """dvc.yaml lists only the keys that change results, and each stage's code folders."""
    params_file, sources = project / "params.yaml", project / "pipeline/data/sources.py"
    params_text, sources_text = params_file.read_text(), sources.read_text()
    try:
        params = yaml.safe_load(params_text)
        params["search"].update(workers=4, backend="serial")
        params["runtime"]["threads"] = 1
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        assert json.loads(sh(["dvc", "status", "--json"], project, dvc_env).stdout) == {}
        sources.write_text(sources_text + "\n# an edit to the data sources\n")
        # Only `data` reads sources.py; the others rerun only if data's outputs then change.
        assert set(json.loads(sh(["dvc", "status", "--json"], project, dvc_env).stdout)) == {"data"}
    finally:
        params_file.write_text(params_text)
        sources.write_text(sources_text)
    assert json.loads(sh(["dvc", "status", "--json"], project, dvc_env).stdout) == {}


def test_same_params_give_identical_results(project, dvc_env, tmp_path):
    other = make_project(tmp_path / "second", dvc_env, TINY)
    sh(["dvc", "repro"], other, dvc_env)
    assert history_without_timing(other) == history_without_timing(project)
    assert (other / "search/best.yaml").read_text() == (project / "search/best.yaml").read_text()
    for name in ("train.json", "evaluate.json"):
        a, b = (json.loads((p / "metrics" / name).read_text()) for p in (project, other))
        a.pop("seconds", None), b.pop("seconds", None)
        assert a == b


def test_editing_params_reruns_only_dependent_stages(project, dvc_env):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["epochs"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(sh(["dvc", "repro"], project, dvc_env).stdout) == {"check", "train", "fuse", "evaluate"}
    # best.yaml records the fitness and its budget, so a new search budget reaches train.
    params["search"]["epochs"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(sh(["dvc", "repro"], project, dvc_env).stdout) == {"check", "search", "train", "fuse", "evaluate"}
    # A space edit always reruns the search; train follows only if the best genome changed
    # (DVC compares best.yaml's content, and an unchanged winner needs no retraining).
    before = (project / "search/best.yaml").read_text()
    params["space"]["width"] = {"low": 8, "high": 12}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = ran_stages(sh(["dvc", "repro"], project, dvc_env).stdout)
    changed = (project / "search/best.yaml").read_text() != before
    assert ran == ({"check", "search", "train", "fuse", "evaluate"} if changed else {"check", "search"})


def test_dvc_experiment_with_set_param_is_listed(project, dvc_env):
    sh(["git", "add", "-A"], project, dvc_env)
    sh(["git", "commit", "-qm", "baseline"], project, dvc_env)
    sh(["dvc", "exp", "run", "-S", "train.epochs=1", "-n", "one-epoch"], project, dvc_env)
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], project, dvc_env).stdout)
    text = json.dumps(shown)
    assert "one-epoch" in text
    experiments = [e for entry in shown for e in (entry.get("experiments") or [])]
    runs = [r for e in experiments for r in (e.get("revs") or [])]
    data = [r["data"] for r in runs if r.get("name") == "one-epoch"]
    assert data, text[:2000]
    assert data[0]["params"]["params.yaml"]["data"]["train"]["epochs"] == 1
    assert "accuracy" in data[0]["metrics"]["metrics/evaluate.json"]["data"]


def test_registry_holds_only_improvements_and_pngs_are_artifacts(project):
    """After every evaluate run of this module (reruns, an experiment), the versions are
    exactly the runs that beat every earlier one on the same test split, and `champion`
    names the newest of them."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    runs = mlflow.search_runs(experiment_names=["e2e"], output_format="list")
    evaluations = sorted((r for r in runs if r.data.tags.get("automl.stage") == "evaluate"), key=lambda r: r.info.start_time)
    improving, best = [], -1.0
    for run in evaluations:
        if run.data.metrics["test_accuracy"] > best:
            improving.append(run.info.run_id)
            best = run.data.metrics["test_accuracy"]
    versions = sorted(client.search_model_versions("name = 'automl-classifier'"), key=lambda v: int(v.version))
    assert [v.tags["run_id"] for v in versions] == improving
    champion = client.get_model_version_by_alias("automl-classifier", "champion")
    assert champion.version == versions[-1].version and float(champion.tags["test_accuracy"]) == best
    assert champion.tags["pipeline_run_id"] and champion.tags["dataset"] == "digits"

    stage_run = {r.data.tags.get("automl.stage"): r for r in runs if r.data.tags.get("automl.stage")}
    expected = {"search": "search_fitness.png", "train": "train_curve.png", "evaluate": "confusion.png"}
    for stage, picture in expected.items():
        names = [a.path for a in client.list_artifacts(stage_run[stage].info.run_id, "plots")]
        assert f"plots/{picture}" in names, (stage, names)
    assert "plots/errors.png" in [a.path for a in client.list_artifacts(stage_run["evaluate"].info.run_id, "plots")]


def test_dvc_metrics_and_plots_views(project, dvc_env):
    shown = json.loads(sh(["dvc", "metrics", "show", "--json"], project, dvc_env).stdout)
    assert "accuracy" in json.dumps(shown)
    out = project / "plots_html"
    sh(["dvc", "plots", "show", "-o", str(out)], project, dvc_env)
    html = (out / "index.html").read_text()
    declared = yaml.safe_load((project / "dvc.yaml").read_text())["plots"]
    for entry in declared:
        if isinstance(entry, dict):  # a data plot: drawn with the title dvc.yaml gives it
            (path, props), = entry.items()
            assert props["title"] in html, path
        else:  # an image plot: embedded by name
            assert Path(entry).name in html, entry
    assert len(declared) == 6


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_registered_model_serves_class_names_and_probabilities_over_http(project, dvc_env):
    """`mlflow models serve -m models:/automl-classifier@champion` on 127.0.0.1 answers a real
    request for a few test images with what the registered pyfunc gives in this process."""
    import subprocess
    import time
    import urllib.request

    import mlflow

    from pipeline.data.prepare import load_prepared

    port = _free_port()
    uri = f"sqlite:///{project / 'mlflow.db'}"
    env = dict(dvc_env, MLFLOW_TRACKING_URI=uri)
    server = subprocess.Popen(["mlflow", "models", "serve", "-m", "models:/automl-classifier@champion", "--env-manager",
                               "local", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    data = load_prepared(project / "data/prepared")
    images = (data.test.images[:6].float() / 255).numpy()
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert server.poll() is None, server.stdout.read()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        body = json.dumps({"inputs": images.tolist()}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            served = json.loads(response.read())["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    mlflow.set_tracking_uri(uri)
    local = mlflow.pyfunc.load_model("models:/automl-classifier@champion").predict(images)
    assert [row["class"] for row in served] == list(local["class"])
    assert all(row["class"] in data.class_names for row in served)
    for row, probability in zip(served, local["probability"]):
        assert row["probability"] == pytest.approx(probability, abs=1e-6)
        assert set(row["probabilities"]) == set(data.class_names)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert max(row["probabilities"].values()) == pytest.approx(row["probability"], abs=1e-9)
