"""The network side of a genome: named blocks, the model builder with its shape planning,
measurements (parameters, FLOPs, latency) and inference on uint8 images."""
