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
    from pipeline.deploy.export import format_of

    path = Path(path)
    if not path.exists():
        raise UserError(f"--model: {path}: not found")
    export = format_of(path)
    if export is not None:
        try:
            meta = export.read_meta(path)
            runner = export.load(path)
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


@dataclass
class Prediction:
    file: str
    top: list[tuple[str, float]]  # (class, probability), most probable first
    error: str = ""


def decode_image(path: Path, input_shape: list[int]) -> torch.Tensor:
    """One image file as uint8 C x H x W in the model's channels and size (PIL decodes,
    converts to L or RGB, and resizes bilinearly, as image folders are prepared)."""
    import numpy as np
    from PIL import Image

    channels, height, width = input_shape
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None)
        array = np.array(image, dtype=np.uint8)  # a copy: PIL's buffer is read-only, torch warns about those
    return torch.from_numpy(array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1)))


def predict_files(predictor: Predictor, files: list[Path], top_k: int = 1, batch: int = 256,
                  root: Path | None = None, names: list[str] | None = None) -> list[Prediction]:
    """The top-k classes of every file, in batches; a file that cannot be decoded gets its
    error instead of a prediction (the others are still classified). Files are named by
    `names`, else relative to `root`, else as given."""
    from PIL import UnidentifiedImageError

    if names is None:
        names = [str(path.relative_to(root)) if root else str(path) for path in files]
    pairs = list(zip(files, names))
    out: list[Prediction] = []
    for start in range(0, len(pairs), batch):
        decoded, decoded_names = [], []
        for path, name in pairs[start : start + batch]:
            try:
                decoded.append(decode_image(path, predictor.input_shape))
                decoded_names.append(name)
            except (UnidentifiedImageError, OSError, ValueError) as err:
                out.append(Prediction(name, [], f"{type(err).__name__}: {first_line(err)}"))
        if not decoded:
            continue
        probabilities = predictor.logits(torch.stack(decoded)).softmax(1)
        values, indices = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        for name, row_values, row_indices in zip(decoded_names, values.tolist(), indices.tolist()):
            out.append(Prediction(name, [(predictor.class_names[i], p) for i, p in zip(row_indices, row_values)]))
    return sorted(out, key=lambda p: p.file)
