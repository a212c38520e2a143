"""Every MLflow call of the pipeline (store, run tree, logging), and the PNG plots it logs.
MLflow is imported here alone, and only when a stage runs."""
