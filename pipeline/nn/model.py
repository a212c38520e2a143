"""Build an `nn.Module` from a genome.

`plan_shapes` walks the architecture with the conv output-size formula
`(in - kernel + 2*padding) // stride + 1` and raises `InvalidArchitecture` before any
module exists if a size would drop below 1; `build_model` is a pure function of
(genome, input shape, class count) in the style of airbench's `make_net`: device and dtype
belong to the caller. Input normalization is a buffer inside the model, so an exported model
takes images scaled to [0, 1] and needs nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn

from pipeline.nn.blocks import ACTIVATIONS, HEADS, POOLING, PatchWhitening, PlainBlock, ResidualBlock, downsample


class InvalidArchitecture(ValueError):
    """The genome describes a network whose feature map would vanish."""


def conv_output_size(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """The output-size formula: (in - kernel + 2*padding) / stride + 1, floored."""
    return (size - kernel + 2 * padding) // stride + 1


def padding_for(genome: Mapping, kernel: int) -> int:
    return kernel // 2 if genome["padding"] == "same" else 0


@dataclass(frozen=True)
class LayerShape:
    name: str
    channels: int
    height: int
    width: int


def stage_widths(genome: Mapping) -> list[int]:
    return [min(512, genome["width"] * 2**i) for i in range(genome["stages"])]


def plan_shapes(genome: Mapping, input_shape: Sequence[int]) -> list[LayerShape]:
    """Every feature-map shape the genome produces, from the formula alone."""
    channels, height, width = input_shape
    shapes = [LayerShape("input", channels, height, width)]
    kernel = genome["kernel"]
    pool_k, pool_s, pool_p = POOLING[genome["pooling"]]

    def step(name, k, p, s, out_channels):
        nonlocal height, width, channels
        height, width = conv_output_size(height, k, p, s), conv_output_size(width, k, p, s)
        channels = out_channels
        if height < 1 or width < 1:
            raise InvalidArchitecture(f"{name} would produce a {height}x{width} map")
        shapes.append(LayerShape(name, channels, height, width))

    if genome["whiten"]:
        step("whiten", PatchWhitening.patch, 0, 1, 2 * channels * PatchWhitening.patch**2)
    for stage, stage_width in enumerate(stage_widths(genome)):
        for block in range(genome["blocks_per_stage"]):
            stride = genome["stride"] if stage == 0 and block == 0 else 1
            step(f"stage{stage}.block{block}", kernel, padding_for(genome, kernel), stride, stage_width)
        if height < pool_k and pool_p == 0:
            raise InvalidArchitecture(f"stage{stage} pooling needs at least {pool_k}x{pool_k}, got {height}x{width}")
        step(f"stage{stage}.pool", pool_k, pool_p, pool_s, stage_width)
    return shapes


def head_features(genome: Mapping, last: LayerShape) -> int:
    """`in_features` of the classifier: C for global pooling, C*H*W for flatten."""
    return last.channels * last.height * last.width if genome["global_pool"] == "flatten" else last.channels


class Normalize(nn.Module):
    """(x - mean) / std with per-channel buffers, so the model carries its preprocessing.

    Exported models take floats in [0, 1]. The trainer feeds raw uint8 batches through
    `from_bytes` instead, where the scaling by 1/255, the mean and the std are folded into
    one multiply-add, so preprocessing costs one kernel and augmentation runs on bytes.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def from_bytes(self, x: torch.Tensor) -> torch.Tensor:
        """The same for uint8 0..255 input, in one multiply-add."""
        return torch.addcmul(-self.mean / self.std, x.float(), 1.0 / (255.0 * self.std))


class Net(nn.Module):
    """normalize -> body (stages) -> head (pool/flatten, dropout) -> classifier.

    `embed` exposes the penultimate features for losses that need an embedding (triplet).
    With `flip_average` (the `tta` gene) `forward`, which evaluation and every export run,
    returns the mean of the logits of the images and of their mirror images; training goes
    through `embed_bytes` and the classifier, one pass.
    """

    def __init__(self, normalize: nn.Module, body: nn.Sequential, head: nn.Module, classifier: nn.Linear,
                 flip_average: bool = False):
        super().__init__()
        self.normalize = normalize
        self.body = body
        self.head = head
        self.classifier = classifier
        self.flip_average = flip_average

    @property
    def whitening(self) -> PatchWhitening | None:
        """The patch-whitening stem, when the genome has one."""
        first = self.body[0] if len(self.body) else None
        return first[0] if isinstance(first, nn.Sequential) and isinstance(first[0], PatchWhitening) else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.normalize(x)))

    def embed_bytes(self, x: torch.Tensor) -> torch.Tensor:
        """`embed` for raw uint8 batches (the trainer's path)."""
        return self.head(self.body(self.normalize.from_bytes(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.embed(x))
        if self.flip_average:
            logits = (logits + self.classifier(self.embed(x.flip(3)))) / 2
        return logits


def build_model(
    genome: Mapping,
    input_shape: Sequence[int],
    num_classes: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Net:
    """The network a genome describes; raises `InvalidArchitecture` for an impossible one."""
    shapes = plan_shapes(genome, input_shape)
    in_channels = input_shape[0]
    mean = list(mean) if mean is not None else [0.0] * in_channels
    std = list(std) if std is not None else [1.0] * in_channels
    block_cls = ResidualBlock if genome["residual"] else PlainBlock
    kernel = genome["kernel"]
    layers: list[nn.Module] = []
    channels = in_channels
    if genome["whiten"]:
        whitening = PatchWhitening(channels)
        layers.append(nn.Sequential(whitening, ACTIVATIONS[genome["activation"]]()))
        channels = whitening.out_channels
    for stage, stage_width in enumerate(stage_widths(genome)):
        for block in range(genome["blocks_per_stage"]):
            stride = genome["stride"] if stage == 0 and block == 0 else 1
            layers.append(
                block_cls(
                    channels, stage_width, kernel, stride, padding_for(genome, kernel),
                    genome["norm"], genome["activation"], genome["attention"],
                )
            )
            channels = stage_width
        layers.append(downsample(genome["pooling"], channels, genome["norm"], genome["activation"]))
    head = nn.Sequential(HEADS[genome["global_pool"]](), nn.Dropout(genome["dropout"]))
    classifier = nn.Linear(head_features(genome, shapes[-1]), num_classes)
    return Net(Normalize(mean, std), nn.Sequential(*layers), head, classifier, flip_average=genome["tta"])
