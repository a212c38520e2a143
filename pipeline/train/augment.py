"""Batch augmentations on tensors, on the training device, from an explicit generator.

They run on whole batches (uint8 in training, floats in [0, 1] also work) before the
model's normalization, so no per-sample Python and no DataLoader workers are needed; the
amounts scale with image size. Each takes the batch, the generator, the batch's indices
into the training split and the epoch; the derandomized ones (the CIFAR-10 speed runs'
alternating flip) use the last two instead of random draws.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def flip(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
    """Mirror half of the images left-right."""
    mask = torch.rand(x.shape[0], device=x.device, generator=gen) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def translate(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
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


def cutout(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
    """Zero one square of side H/4 (at least 1) at a random centre in each image."""
    n, _, h, w = x.shape
    side = max(1, h // 4)
    cy = torch.randint(0, h, (n,), device=x.device, generator=gen)[:, None, None]
    cx = torch.randint(0, w, (n,), device=x.device, generator=gen)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() <= side // 2) & ((xs - cx).abs() <= side // 2)
    return x.masked_fill(inside[:, None], 0)


def first_flips(index: torch.Tensor) -> torch.Tensor:
    """Which images the alternating flip mirrors in even epochs: a fixed half chosen by a
    multiplicative hash of the image's index (no generator, so every seed agrees)."""
    return ((index.long() * 2654435761) >> 15) % 2 == 1


def alternating_flip(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
    """Mirror a fixed half of the training images in even epochs and the other half in odd
    ones (airbench's derandomized flip): every image is seen both ways in any two
    consecutive epochs, where random flips leave a quarter of them one way."""
    index = torch.arange(x.shape[0], device=x.device) if index is None else index
    mask = first_flips(index) ^ bool(epoch % 2)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def reflect(positions: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside [0, size) mirrored back inside, without repeating the edge
    (`F.pad`'s reflect mode, as index arithmetic that works on uint8 images)."""
    positions = positions.abs()
    return torch.where(positions >= size, 2 * (size - 1) - positions, positions)


def reflect_translate(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
    """Shift each image by up to H/16 pixels (at least 1) in each direction, filling from
    the mirrored border (the speed runs' 2-pixel translation on 32x32)."""
    n, _, h, w = x.shape
    pad = max(1, round(h / 16))
    dy = torch.randint(-pad, pad + 1, (n,), device=x.device, generator=gen)
    dx = torch.randint(-pad, pad + 1, (n,), device=x.device, generator=gen)
    rows = reflect(torch.arange(h, device=x.device)[None, :] + dy[:, None], h)[:, None, :, None]
    cols = reflect(torch.arange(w, device=x.device)[None, :] + dx[:, None], w)[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[batch, channel, rows, cols]


def alternating_flip_translate(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
    """The speed runs' augmentation: the alternating flip, then a reflected translation."""
    return reflect_translate(alternating_flip(x, gen, index, epoch), gen)


def flip_translate(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
    """Random flips (half of the images, drawn anew each time), then a reflected translation:
    `alternating_flip_translate` with the flip left random."""
    return reflect_translate(flip(x, gen), gen)


def no_augmentation(x: torch.Tensor, gen: torch.Generator, index=None, epoch: int = 0) -> torch.Tensor:
    return x


AUGMENTATIONS = {"none": no_augmentation, "flip": flip, "translate": translate, "cutout": cutout,
                 "flip_translate": flip_translate, "alternating_flip": alternating_flip,
                 "alternating_flip_translate": alternating_flip_translate}
