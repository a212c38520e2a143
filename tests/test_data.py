"""Data preparation: stratified seeded splits, uint8 tensors, train-only stats, safe files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.data.prepare import load_prepared, prepare, save_prepared
from pipeline.data.settings import DataSettings
from pipeline.errors import UserError


def test_digits_are_uint8_1x8x8_with_ten_classes():
    data = prepare(DataSettings(), seed=0)
    assert data.input_shape == (1, 8, 8)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert data.class_names == [str(i) for i in range(10)]
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert len(data.test) == 360 and len(data.val) == 270


def test_split_is_stratified_seeded_and_disjoint():
    a, b, c = prepare(DataSettings(), 0), prepare(DataSettings(), 0), prepare(DataSettings(), 1)
    assert torch.equal(a.test.images, b.test.images) and not torch.equal(a.test.images, c.test.images)
    for split in (a.train, a.val, a.test):
        share = np.bincount(split.labels.numpy(), minlength=10) / len(split)
        assert np.all(np.abs(share - 0.1) < 0.02)
    rows = lambda s: {bytes(x.numpy().tobytes()) + bytes([int(y)]) for x, y in zip(s.images, s.labels)}
    assert not rows(a.train) & rows(a.test)


def test_mean_and_std_come_from_the_training_split_only():
    data = prepare(DataSettings(), 0)
    pixels = data.train.images.double() / 255
    assert data.mean[0] == pytest.approx(pixels.mean().item())
    assert data.std[0] == pytest.approx(pixels.std().item())


def test_prepared_files_load_with_weights_only(tmp_path):
    data = prepare(DataSettings(), 0)
    save_prepared(data, tmp_path)
    raw = torch.load(tmp_path / "train.pt", weights_only=True)
    assert torch.equal(raw["images"], data.train.images)
    loaded = load_prepared(tmp_path)
    assert torch.equal(loaded.test.labels, data.test.labels)
    assert loaded.mean == data.mean and json.loads((tmp_path / "meta.json").read_text())["input_shape"] == [1, 8, 8]


def test_corrupt_prepared_file_is_named(tmp_path):
    save_prepared(prepare(DataSettings(), 0), tmp_path)
    (tmp_path / "val.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="val.pt: cannot be read as a torch file"):
        load_prepared(tmp_path)


def test_missing_prepared_data_points_to_the_stage(tmp_path):
    with pytest.raises(UserError, match="run the data stage first"):
        load_prepared(tmp_path)
