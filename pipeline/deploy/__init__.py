"""What leaves the search: Conv+BatchNorm fusion, model files, exports (ONNX, TorchScript),
a predictor over any of them, and classification metrics."""
