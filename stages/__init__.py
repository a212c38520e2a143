"""Thin entry points, one per DVC stage: load params, call the library, write the outputs
that dvc.yaml declares, log to MLflow. `stages.cli` exposes them as `automl <stage>`."""
