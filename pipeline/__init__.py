"""A declarative AutoML library for image classifiers.

The core (genome, model, training, search, fusion) needs only torch and deap, so it runs on a
GPU machine without MLflow or DVC; `tracking` and the `stages/` entry points add those.
"""
