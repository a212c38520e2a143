"""Where images come from: torchvision's datasets, and the user's own image folders.

`fetch_folder` turns `data.source` (a directory, a local .tar/.tar.gz/.tgz/.zip, or an
http(s)/file URL of one) into a local directory of class folders. Archives and URLs must
carry a sha256; the download is checked before anything is extracted, extraction refuses
members that would land outside the target, links and devices, and every step works in a
temporary path that is renamed into place only when it succeeded, so a failure leaves
nothing behind. Extracted archives are cached by checksum under the downloads folder.

Messages name where the value came from: `data.source`/`data.sha256` for the data stage,
or the command's own options (`--images`, `--data`, `--sha256`) when `automl predict` or
`automl evaluate` passes them as `option`/`checksum`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from pipeline.errors import UserError, first_line

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "file://"))


def is_archive(source: str) -> bool:
    return source.lower().endswith(ARCHIVE_SUFFIXES)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, timeout: float = 60.0, option: str = "data.source") -> None:
    """Copy a URL to `dest` (a temporary path chosen by the caller)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise UserError(f"{option}: cannot download {url} ({getattr(err, 'reason', err)})") from None


def _safe_target(dest: Path, name: str, source: str, option: str = "data.source") -> Path:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise UserError(f"{option}: {source}: member '{name}' would be extracted outside the target; refused")
    return dest / Path(*path.parts) if path.parts else dest


def extract_tar(archive: Path, dest: Path, source: str, option: str = "data.source") -> None:
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _safe_target(dest, member.name, source, option)
                if not (member.isfile() or member.isdir()):
                    kind = "link" if (member.issym() or member.islnk()) else "special file"
                    raise UserError(f"{option}: {source}: member '{member.name}' is a {kind}; refused")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise UserError(f"{option}: {source}: not a readable tar archive ({err})") from None


def extract_zip(archive: Path, dest: Path, source: str, option: str = "data.source") -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _safe_target(dest, info.filename, source, option)
                mode = info.external_attr >> 16
                if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise UserError(f"{option}: {source}: member '{info.filename}' is a link or special file; refused")
            zf.extractall(dest)
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{option}: {source}: not a readable zip archive ({err})") from None


def _single_root(folder: Path) -> Path:
    """An archive may hold its class folders directly or inside one top-level folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if p.is_dir()]
        if inner:
            return entries[0]
    return folder


def fetch_folder(source: str, sha256: str, downloads: Path, option: str = "data.source",
                 checksum: str = "data.sha256") -> Path:
    """The local directory that `source` names (downloading/extracting it); errors name
    `option` (where `source` came from) and `checksum` (where `sha256` came from)."""
    if not source:
        raise UserError(f"{option}: required for dataset 'imagefolder' (a directory, archive or URL)")
    local = Path(source[len("file://"):]) if source.startswith("file://") else Path(source)
    if not source.startswith(("http://", "https://")) and not local.exists():
        raise UserError(f"{option}: {source}: not found")
    if not is_url(source) and local.is_dir():
        return local
    if not is_archive(source):
        raise UserError(f"{option}: {source}: expected a directory or a {', '.join(ARCHIVE_SUFFIXES)} archive")
    if not sha256:
        raise UserError(f"{checksum}: required for the archive or URL {source}")
    downloads.mkdir(parents=True, exist_ok=True)
    target = downloads / f"imagefolder-{sha256[:16]}"
    if target.is_dir():
        return _single_root(target)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".fetch-") as work:
        work = Path(work)
        archive = work / Path(local.name or "archive").name
        if source.startswith(("http://", "https://")):
            download(source, archive, option=option)
        elif not local.is_file():
            raise UserError(f"{option}: {source}: not a file")
        else:
            shutil.copyfile(local, archive)
        actual = sha256_of(archive)
        if actual != sha256.lower():
            raise UserError(f"{checksum}: {archive.name} from {source} has sha256 {actual}, expected {sha256}")
        extracted = work / "extracted"
        extracted.mkdir()
        (extract_zip if archive.name.lower().endswith(".zip") else extract_tar)(archive, extracted, source, option)
        os.replace(extracted, target)
    return _single_root(target)


def load_image_folder(root: Path, image_size: int, option: str = "data.source",
                      unreadable: list[tuple[str, str]] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode `root/<class>/<image>` into uint8 N x C x H x W (classes = sorted folder names).

    All-grayscale folders stay one channel, otherwise everything becomes RGB. Images of
    different sizes need `data.image_size`, which resizes every image to a square. An image
    that cannot be decoded is an error, or, when an `unreadable` list is given, skipped and
    added to it as (path relative to `root`, error).
    """
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(c, p) for c in classes for p in sorted((root / c).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    if len(classes) < 2 or not files:
        raise UserError(f"{option}: {root}: expected at least two class folders of images (found {len(classes)})")
    opened, kept = [], []
    for entry in files:
        path = entry[1]
        try:
            with Image.open(path) as image:
                image.load()
                opened.append(image)
                kept.append(entry)
        except (UnidentifiedImageError, OSError) as err:
            if unreadable is None:
                raise UserError(f"{option}: {path}: cannot decode image ({first_line(err, 120)})") from None
            unreadable.append((str(path.relative_to(root)), f"{type(err).__name__}: {first_line(err, 120)}"))
    if not opened:
        raise UserError(f"{option}: {root}: no readable images ({len(files)} files could not be decoded)")
    files = kept
    mode = "L" if all(image.mode in ("1", "L", "LA", "I", "I;16", "F") for image in opened) else "RGB"
    arrays = []
    for image in opened:
        image = image.convert(mode)
        if image_size:
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=None)
        array = np.asarray(image, dtype=np.uint8)
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    sizes = {array.shape[1:] for array in arrays}
    if len(sizes) > 1:
        raise UserError(f"data.image_size: images in {root} differ in size ({sorted(sizes)[:3]}...); set image_size to resize them")
    labels = np.array([classes.index(c) for c, _ in files], dtype=np.int64)
    return np.stack(arrays), labels, classes


#: `data.dataset` names: the embedded digits, the user's image folders, torchvision's sets.
TORCHVISION_DATASETS = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
    "kmnist": "KMNIST",
    "svhn": "SVHN",
}
DATASETS = ("digits", "imagefolder", *TORCHVISION_DATASETS)


def _as_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    data = dataset.data
    data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if data.ndim == 3:  # MNIST family: N x H x W
        data = data[:, None]
    elif data.shape[-1] == 3:  # CIFAR: N x H x W x C
        data = data.transpose(0, 3, 1, 2)
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels
    labels = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return np.ascontiguousarray(data.astype(np.uint8)), labels.astype(np.int64)


def load_torchvision(name: str, downloads: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[str]]:
    """(train, official test, class names) through torchvision's own download and checks."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_DATASETS[name])
    root = downloads / name
    try:
        if name == "svhn":
            train, test = cls(str(root), split="train", download=True), cls(str(root), split="test", download=True)
        else:
            train, test = cls(str(root), train=True, download=True), cls(str(root), train=False, download=True)
    except (RuntimeError, OSError, urllib.error.URLError) as err:
        raise UserError(f"data.dataset: {name}: download or integrity check failed ({first_line(err)})") from None
    classes = list(getattr(train, "classes", None) or [str(i) for i in range(10)])
    classes = [c.split(" - ")[-1] if " - " in c else c for c in classes]
    return _as_arrays(train), _as_arrays(test), classes
