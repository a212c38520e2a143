# `make repro` and `make test` are the two commands of the README. Both create .venv and
# install the project once (re-installing only when pyproject.toml changes), so a second
# call starts at once.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: repro test install ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

repro: $(STAMP)
	PATH=$(BIN):$$PATH $(BIN)/dvc repro

test: $(STAMP)
	PATH=$(BIN):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS)

ui: $(STAMP)
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(CURDIR)/mlflow.db

clean:
	rm -rf data/prepared search models metrics/*.json metrics/plots mlflow.db mlartifacts mlruns
