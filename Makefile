# `make repro` and `make test` are the two commands of the README. Both create .venv and
# install the project once (re-installing only when pyproject.toml changes), so a second
# call starts at once. `make repro` installs what the pipeline needs and nothing more;
# `make test` adds the test extras (Ray, Optuna, hypothesis, psycopg2, ...).
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
CORE := $(VENV)/.installed-core
TEST := $(VENV)/.installed-test
# Test files run side by side, one per core (a file's tests stay together, in order, on one
# worker: the end-to-end modules share one DVC project). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto

.PHONY: repro test install install-test ui screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(CORE)

$(TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST) $(CORE)

install: $(CORE)

install-test: $(TEST)

repro: $(CORE)
	PATH=$(BIN):$$PATH $(BIN)/dvc repro

test: $(TEST)
	PATH=$(BIN):$$PATH $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

ui: $(CORE)
	@$(BIN)/python -c "import mlflow, yaml; e = mlflow.MlflowClient('sqlite:///$(CURDIR)/mlflow.db').get_experiment_by_name((yaml.safe_load(open('params.yaml')).get('mlflow') or {}).get('experiment', 'automl')); print('open http://127.0.0.1:5000/#/experiments/' + (e.experiment_id + '?workflowType=machine_learning' if e else ''))" 2>/dev/null || true
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(CURDIR)/mlflow.db

screenshots: $(CORE)
	PATH=$(BIN):$$PATH bash docs/screenshots.sh

clean:
	rm -rf data/prepared search models metrics/*.json metrics/plots mlflow.db mlartifacts mlruns
