"""Running a network on the pipeline's uint8 images: scale to [0, 1] (the model's own
Normalize does the rest) and predict in eval mode, batched."""
from __future__ import annotations

import torch


def to_inputs(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float 0..1; the model's own Normalize does the rest."""
    return images.float().div_(255.0)


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch: int = 1024) -> torch.Tensor:
    """Logits for uint8 images, in eval mode, batched; returned on the CPU as float32."""
    model.eval()
    outputs = []
    for start in range(0, len(images), batch):
        chunk = to_inputs(images[start : start + batch].to(device, non_blocking=True))
        outputs.append(model(chunk).float())
    return torch.cat(outputs).cpu() if outputs else torch.empty(0)
