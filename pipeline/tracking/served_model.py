"""The served classifier: an MLflow pyfunc written as a "model from code". MLflow copies
this file into the logged model and runs it to load the model, so loading unpickles
nothing; it needs torch, numpy, pandas and MLflow, not this project.

Artifacts: `program`, the fused network saved by `torch.export` (a .pt2 file), and
`classes`, its class names as a JSON list.

Signature: the input is a float32 tensor N x C x H x W of images scaled to [0, 1] (the
network normalizes them itself); the output has one row per image: `class` (the most
probable class name), `probability` (its probability) and `probabilities` (every class
name -> its probability).
"""
import json

import mlflow
import numpy as np
import pandas as pd
import torch


class Classifier(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.network = torch.export.load(context.artifacts["program"]).module()
        with open(context.artifacts["classes"]) as handle:
            self.class_names = json.load(handle)

    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        images = torch.from_numpy(np.array(model_input, dtype=np.float32))
        with torch.inference_mode():
            probabilities = self.network(images).softmax(1).double()
        best = probabilities.argmax(1).tolist()
        rows = probabilities.tolist()
        return pd.DataFrame({
            "class": [self.class_names[i] for i in best],
            "probability": [row[i] for row, i in zip(rows, best)],
            "probabilities": [dict(zip(self.class_names, row)) for row in rows],
        })


mlflow.models.set_model(Classifier())
