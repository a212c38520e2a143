"""The prepared dataset: uint8 splits that the trainer keeps on the device as they are."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class PreparedData:
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    mean: list[float]
    std: list[float]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """A hash of what training sees (train and validation splits, classes, statistics);
        the test split does not change a search's results, so it is left out."""
        digest = hashlib.sha256(repr((self.class_names, self.mean, self.std, self.input_shape)).encode())
        for split in (self.train, self.val):
            digest.update(split.images.contiguous().numpy().tobytes())
            digest.update(split.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]
