"""Data sources: user image archives (safe extraction, checksums) and torchvision datasets,
all served from local files or a 127.0.0.1 HTTP server made in the test."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import struct
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.data.prepare import prepare
from pipeline.data.settings import DataSettings
from pipeline.errors import UserError

CLASSES = ("cat", "dog", "fox")


def make_images(root: Path, per_class: int = 6, size: int = 12, channels: int = 3) -> Path:
    """Class folders of PNGs whose mean brightness encodes the class (so it is learnable)."""
    generator = torch.Generator().manual_seed(0)
    for index, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            base = 60 * index + torch.randint(0, 30, (size, size, channels), generator=generator)
            save_png(base.to(torch.uint8).numpy(), root / name / f"{i}.png")
    return root


def save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tar(tmp_path: Path, top_level: bool = True) -> Path:
    images = make_images(tmp_path / "src" / "pets")
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        if top_level:
            tar.add(images, arcname="pets")
        else:
            for child in sorted(images.iterdir()):
                tar.add(child, arcname=child.name)
    return archive


def make_zip(tmp_path: Path, top_level: bool = False) -> Path:
    images = make_images(tmp_path / "zsrc" / "pets")
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(images.rglob("*.png")):
            name = file.relative_to(images.parent if top_level else images)
            zf.write(file, str(name))
    return archive


def folder_params(source, checksum="", **extra) -> DataSettings:
    return DataSettings(dataset="imagefolder", source=str(source), sha256=checksum, val_fraction=0.2, test_fraction=0.2, **extra)


@pytest.mark.parametrize("maker,top_level", [(make_tar, True), (make_tar, False), (make_zip, False), (make_zip, True)])
def test_good_archives_prepare_with_classes_from_folders(tmp_path, maker, top_level):
    archive = maker(tmp_path, top_level)
    data = prepare(folder_params(archive, sha(archive)), seed=0, downloads=tmp_path / "downloads")
    assert data.class_names == list(CLASSES)
    assert data.input_shape == (3, 12, 12) and data.train.images.dtype == torch.uint8
    assert len(data.train) + len(data.val) + len(data.test) == 18
    assert set(data.test.labels.tolist()) == set(data.val.labels.tolist()) == {0, 1, 2}  # stratified


def test_file_url_and_directory_sources(tmp_path):
    archive = make_tar(tmp_path)
    by_url = prepare(folder_params(archive.as_uri(), sha(archive)), 0, tmp_path / "dl")
    by_dir = prepare(folder_params(tmp_path / "src" / "pets"), 0, tmp_path / "dl2")
    assert torch.equal(by_url.train.images, by_dir.train.images)


@pytest.fixture
def http_root(tmp_path):
    """A 127.0.0.1 HTTP server over a folder, stopped after the test."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_url_source(tmp_path, http_root):
    root, base = http_root
    archive = make_zip(tmp_path)
    (root / "pets.zip").write_bytes(archive.read_bytes())
    data = prepare(folder_params(f"{base}/pets.zip", sha(archive)), 0, tmp_path / "dl")
    assert data.num_classes == 3


def _assert_nothing_left(downloads: Path):
    leftovers = [p for p in downloads.rglob("*")] if downloads.exists() else []
    assert leftovers == []


def test_traversal_member_is_refused_and_nothing_left(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        payload = b"gotcha"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(UserError, match=r"'\.\./escaped\.txt' would be extracted outside the target; refused") as err:
        prepare(folder_params(archive, sha(archive)), 0, tmp_path / "dl")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "dl" / "escaped.txt").exists()
    _assert_nothing_left(tmp_path / "dl")


def test_zip_traversal_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.txt", "gotcha")
    with pytest.raises(UserError, match="outside the target; refused"):
        prepare(folder_params(archive, sha(archive)), 0, tmp_path / "dl")
    _assert_nothing_left(tmp_path / "dl")


def test_symlink_member_is_refused_and_nothing_left(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("pets/cat/0.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(UserError, match=r"'pets/cat/0.png' is a link; refused"):
        prepare(folder_params(archive, sha(archive)), 0, tmp_path / "dl")
    _assert_nothing_left(tmp_path / "dl")


def test_wrong_checksum_names_file_and_both_checksums_and_leaves_nothing(tmp_path):
    archive = make_tar(tmp_path)
    wrong = "0" * 64
    with pytest.raises(UserError) as err:
        prepare(folder_params(archive, wrong), 0, tmp_path / "dl")
    message = str(err.value)
    assert "pets.tar.gz" in message and sha(archive) in message and wrong in message
    _assert_nothing_left(tmp_path / "dl")


def test_failed_download_leaves_nothing(tmp_path, http_root):
    _, base = http_root
    with pytest.raises(UserError, match="cannot download"):
        prepare(folder_params(f"{base}/missing.tar.gz", "1" * 64), 0, tmp_path / "dl")
    _assert_nothing_left(tmp_path / "dl")


def test_mixed_sizes_need_image_size_and_grayscale_stays_one_channel(tmp_path):
    root = make_images(tmp_path / "gray", channels=1)
    extra = tmp_path / "gray" / "cat" / "big.png"
    save_png(np.zeros((20, 20, 1), dtype=np.uint8), extra)
    with pytest.raises(UserError, match="data.image_size: images in .* differ in size"):
        prepare(folder_params(root), 0, tmp_path / "dl")
    data = prepare(folder_params(root, image_size=16), 0, tmp_path / "dl")
    assert data.input_shape == (1, 16, 16)


def test_archive_without_checksum_is_refused_by_params(tmp_path):
    from pipeline.errors import ConfigError
    from pipeline.params import params_from_dict

    with pytest.raises(ConfigError, match="data.sha256: required"):
        params_from_dict({"data": {"dataset": "imagefolder", "source": "https://example.org/x.tar.gz"}})


# -- torchvision: MNIST served from 127.0.0.1 in its own idx format -------------------------

def _idx_images(images: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())


def _idx_labels(labels: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def test_torchvision_mnist_downloads_and_checks_through_its_own_code(tmp_path, http_root, monkeypatch):
    import torchvision.datasets as tvd

    root, base = http_root
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": _idx_images(rng.integers(0, 255, (50, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte.gz": _idx_labels(np.arange(50) % 10),
        "t10k-images-idx3-ubyte.gz": _idx_images(rng.integers(0, 255, (20, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte.gz": _idx_labels(np.arange(20) % 10),
    }
    for name, payload in files.items():
        (root / name).write_bytes(payload)
    monkeypatch.setattr(tvd.MNIST, "mirrors", [f"{base}/"])
    monkeypatch.setattr(tvd.MNIST, "resources", [(n, hashlib.md5(p).hexdigest()) for n, p in files.items()])
    data = prepare(DataSettings(dataset="mnist", val_fraction=0.2), 0, tmp_path / "dl")
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert len(data.test) == 20 and len(data.train) + len(data.val) == 50  # official test split kept
    assert data.class_names[0] == "zero"

    # A corrupted file fails torchvision's integrity check, with a one-line error.
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"corrupt")
    monkeypatch.setattr(tvd.MNIST, "resources", [(n, "0" * 32) for n in files])
    with pytest.raises(UserError, match="data.dataset: mnist: download or integrity check failed"):
        prepare(DataSettings(dataset="mnist"), 0, tmp_path / "dl-fresh")
