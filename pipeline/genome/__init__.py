"""The CNN genome: the gene catalog, canonical form and repair, best.yaml, and the CNN
search problem that connects the generic engine to `nn`, `train` and `data`."""
