"""Model files: a state dict plus everything needed to rebuild the network, no pickle.

`models/model.pt` and `models/fused.pt` are dicts of tensors, strings and numbers, so they
load with `torch.load(..., weights_only=True)`; the network is rebuilt from the genome with
`build_model` (and `fuse_model` for a fused file) and the weights are loaded strictly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from pipeline.deploy.fusion import fuse_model
from pipeline.errors import UserError, first_line
from pipeline.fileio import load_torch, save_torch
from pipeline.genome.files import genome_from_mapping
from pipeline.nn.model import build_model

FORMAT = "automl-model/1"


@dataclass(frozen=True)
class ModelInfo:
    genome: dict
    class_names: list[str]
    input_shape: list[int]
    mean: list[float]
    std: list[float]
    fused: bool


def save_model(path: Path, model: nn.Module, info: ModelInfo) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_torch(
        path,
        {
            "format": FORMAT,
            "state_dict": state,
            "genome": dict(info.genome),
            "class_names": list(info.class_names),
            "input_shape": list(info.input_shape),
            "mean": list(info.mean),
            "std": list(info.std),
            "fused": info.fused,
        },
    )


def load_model(path: Path) -> tuple[nn.Module, ModelInfo]:
    """Rebuild and load a saved model (fused or not), in eval mode on the CPU."""
    raw = load_torch(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise UserError(f"{path}: not a model file of this project (expected format {FORMAT})")
    try:
        info = ModelInfo(
            genome_from_mapping(raw["genome"], str(path)),
            list(raw["class_names"]),
            list(raw["input_shape"]),
            list(raw["mean"]),
            list(raw["std"]),
            bool(raw["fused"]),
        )
        model = build_model(info.genome, info.input_shape, len(info.class_names), info.mean, info.std)
        if info.fused:
            model, _ = fuse_model(model)
        model.load_state_dict(raw["state_dict"], strict=True)
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise UserError(f"{path}: does not match its genome ({first_line(err)})") from None
    return model.eval(), info
