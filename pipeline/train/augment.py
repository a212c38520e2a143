"""Batch augmentations on tensors, on the training device, from an explicit generator.

They run on whole batches (uint8 in training, floats in [0, 1] also work) before the
model's normalization, so no per-sample Python and no DataLoader workers are needed; the
amounts scale with image size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror half of the images left-right."""
    mask = torch.rand(x.shape[0], device=x.device, generator=gen) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def translate(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by up to H/8 pixels (at least 1) in each direction, zero-filled."""
    n, _, h, w = x.shape
    pad = max(1, round(h / 8))
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=gen)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def cutout(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Zero one square of side H/4 (at least 1) at a random centre in each image."""
    n, _, h, w = x.shape
    side = max(1, h // 4)
    cy = torch.randint(0, h, (n,), device=x.device, generator=gen)[:, None, None]
    cx = torch.randint(0, w, (n,), device=x.device, generator=gen)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() <= side // 2) & ((xs - cx).abs() <= side // 2)
    return x.masked_fill(inside[:, None], 0)


AUGMENTATIONS = {"none": lambda x, gen: x, "flip": flip, "translate": translate, "cutout": cutout}
