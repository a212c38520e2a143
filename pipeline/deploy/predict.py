"""Run any saved model (our .pt, TorchScript or ONNX) on any images.

`load_predictor` gives one interface over the three formats: class names, the input shape
the model expects, and `logits(images)` for uint8 N x C x H x W images, which are first
conformed to that shape (channels converted, size resized) so a user's own folder of
photos can be scored by a model trained on something else of the same classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from pipeline.errors import UserError, first_line
from pipeline.nn.inference import to_inputs


@dataclass
class Predictor:
    class_names: list[str]
    input_shape: list[int]
    run: Callable[[torch.Tensor], torch.Tensor]

    def logits(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        images = conform(images, self.input_shape)
        outputs = [self.run(to_inputs(images[i : i + batch])) for i in range(0, len(images), batch)]
        return torch.cat(outputs).float() if outputs else torch.empty(0, len(self.class_names))


def conform(images: torch.Tensor, input_shape: list[int]) -> torch.Tensor:
    """uint8 images converted to the model's channel count and resized to its H x W."""
    channels, height, width = input_shape
    if images.shape[1] != channels:
        if channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            images = images[:, :1].expand(-1, channels, -1, -1)
    if tuple(images.shape[2:]) != (height, width):
        resized = F.interpolate(images.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


def load_predictor(path: Path) -> Predictor:
    from pipeline.deploy.artifacts import load_model
    from pipeline.deploy.export import load_runner, read_meta

    path = Path(path)
    if not path.exists():
        raise UserError(f"--model: {path}: not found")
    if path.suffix == ".onnx" or path.name.endswith(".torchscript.pt"):
        try:
            meta = read_meta(path)
            runner = load_runner(path)
        except Exception as err:  # onnx/jit raise many types for broken files
            raise UserError(f"--model: {path}: cannot be loaded ({first_line(err)})") from None
        if not meta.get("class_names"):
            raise UserError(f"--model: {path}: has no class names (export it with `automl fuse`)")
        return Predictor(meta["class_names"], meta["input_shape"], runner)
    model, info = load_model(path)

    def run_eager(inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(inputs)

    return Predictor(info.class_names, info.input_shape, run_eager)
