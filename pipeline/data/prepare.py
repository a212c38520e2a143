"""Preparation: load a source, split it stratified and seeded, compute stats, save, load.

Whatever the source, the prepared form is the same (`pipeline.data.types`): one uint8
tensor N x C x H x W and one int64 label tensor per split, the class names, and per-channel
mean/std of the training split only (scaled to [0, 1]), saved in files that
`torch.load(..., weights_only=True)` reads.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from pipeline.data.sources import DATASETS, TORCHVISION_DATASETS, fetch_folder, load_image_folder, load_torchvision
from pipeline.data.types import PreparedData, Split
from pipeline.errors import UserError
from pipeline.fileio import load_torch, save_torch, write_json


def load_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's embedded 8x8 digits (values 0..16) as uint8 1x8x8 images."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    return images, bunch.target.astype(np.int64), [str(name) for name in bunch.target_names]


def split_dataset(
    images: np.ndarray, labels: np.ndarray, class_names: list[str], val_fraction: float, test_fraction: float, seed: int
) -> PreparedData:
    """Stratified, seeded train/val/test split; mean/std from the training split only."""
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
    val_share = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest], random_state=seed)

    def split(idx: np.ndarray) -> Split:
        idx = np.sort(idx)
        return Split(torch.from_numpy(np.ascontiguousarray(images[idx])), torch.from_numpy(labels[idx]))

    train_split = split(train)
    mean, std = channel_stats(train_split.images)
    return PreparedData(train_split, split(val), split(test), class_names, mean, std)


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (in chunks, for big sets)."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096].double().div_(255.0)
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.pow(2).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    var = (squares - count * mean.pow(2)) / max(1, count - 1)
    return mean.tolist(), var.clamp_min(1e-6).sqrt().tolist()


def _subsample(images: np.ndarray, labels: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, seeded subset of at most `limit` samples (0 = everything)."""
    if not limit or limit >= len(labels):
        return images, labels
    keep, _ = train_test_split(np.arange(len(labels)), train_size=limit, stratify=labels, random_state=seed)
    keep = np.sort(keep)
    return images[keep], labels[keep]


def _with_official_test(train, test, class_names, val_fraction, limit, seed) -> PreparedData:
    """Keep a dataset's official test split as the test split; validation comes from train."""
    train_images, train_labels = _subsample(*train, limit, seed)
    test_images, test_labels = _subsample(*test, limit and max(1, limit // 5), seed)
    fit_index, val_index = train_test_split(
        np.arange(len(train_labels)), test_size=val_fraction, stratify=train_labels, random_state=seed
    )
    fit_index, val_index = np.sort(fit_index), np.sort(val_index)

    def as_split(x, y):
        return Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y)))

    train_split = as_split(train_images[fit_index], train_labels[fit_index])
    mean, std = channel_stats(train_split.images)
    val_split = as_split(train_images[val_index], train_labels[val_index])
    return PreparedData(train_split, val_split, as_split(test_images, test_labels), class_names, mean, std)


def prepare(settings, seed: int, downloads: Path = Path("data/downloads")) -> PreparedData:
    """Load the dataset that `settings` (a `DataSettings`) names and split it."""
    if settings.dataset in TORCHVISION_DATASETS:
        train, test, names = load_torchvision(settings.dataset, Path(downloads))
        return _with_official_test(train, test, names, settings.val_fraction, settings.max_samples, seed)
    if settings.dataset == "imagefolder":
        root = fetch_folder(settings.source, settings.sha256, Path(downloads))
        images, labels, names = load_image_folder(root, settings.image_size)
    elif settings.dataset == "digits":
        images, labels, names = load_digits()
    else:
        raise UserError(f"data.dataset: unknown dataset '{settings.dataset}'; allowed: {', '.join(DATASETS)}")
    images, labels = _subsample(images, labels, settings.max_samples, seed)
    return split_dataset(images, labels, names, settings.val_fraction, settings.test_fraction, seed)


SPLITS = ("train", "val", "test")


def save_prepared(data: PreparedData, folder: Path) -> None:
    folder = Path(folder)
    for name in SPLITS:
        split = getattr(data, name)
        save_torch(folder / f"{name}.pt", {"images": split.images, "labels": split.labels})
    write_json(
        folder / "meta.json",
        {
            "class_names": data.class_names,
            "mean": data.mean,
            "std": data.std,
            "input_shape": list(data.input_shape),
            "sizes": {name: len(getattr(data, name)) for name in SPLITS},
        },
    )


def load_prepared(folder: Path) -> PreparedData:
    folder = Path(folder)
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise UserError(f"{meta_path}: not found; run the data stage first (dvc repro data)") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{meta_path}: not valid JSON ({err})") from None
    splits = {}
    for name in SPLITS:
        path = folder / f"{name}.pt"
        raw = load_torch(path)
        if not isinstance(raw, dict) or not {"images", "labels"} <= set(raw):
            raise UserError(f"{path}: expected a dict with 'images' and 'labels' tensors")
        images, labels = raw["images"], raw["labels"]
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise UserError(f"{path}: expected uint8 images N x C x H x W with one label each")
        splits[name] = Split(images, labels.long())
    return PreparedData(splits["train"], splits["val"], splits["test"], meta["class_names"], meta["mean"], meta["std"])
