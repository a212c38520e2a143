"""Exports: ONNX, .pt2 and TorchScript match PyTorch, carry their class names, load through
the one predictor, and any saved model evaluates on a user's image folder."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.deploy.artifacts import ModelInfo, save_model
from pipeline.deploy.export import EXPORTS, max_difference
from pipeline.deploy.fusion import fuse_model
from pipeline.deploy.predict import conform, load_predictor
from pipeline.genome.genome import default_genome
from pipeline.nn.model import build_model
from pipeline.train.fit import fit
from tests.helpers import randomize_batchnorm

META = {"class_names": [str(i) for i in range(10)], "input_shape": [3, 16, 16]}


@pytest.fixture(scope="module")
def fused_residual_se():
    torch.manual_seed(0)
    genome = default_genome()
    genome.update(stages=2, width=16, residual=True, attention="se", norm="batch")
    model = build_model(genome, (3, 16, 16), 10).eval()
    randomize_batchnorm(model)
    return fuse_model(model)[0]


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_export_matches_pytorch_within_1e_4_at_any_batch(tmp_path, fused_residual_se, kind):
    export = EXPORTS[kind]
    path = tmp_path / f"model{export.suffix}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export.write(fused_residual_se, torch.rand(2, 3, 16, 16), path, META)
        runner = export.load(path)
        assert export.read_meta(path) == META
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
    for batch in (1, 7, 64):
        assert max_difference(fused_residual_se, runner, torch.rand(batch, 3, 16, 16)) < 1e-4


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_every_export_loads_as_a_predictor_with_the_eager_models_answers(tmp_path, fused_residual_se, kind):
    export = EXPORTS[kind]
    path = tmp_path / f"fused{export.suffix}"
    export.write(fused_residual_se, torch.rand(2, 3, 16, 16), path, META)
    predictor = load_predictor(path)
    images = torch.randint(0, 256, (9, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        eager = fused_residual_se(images.float() / 255)
    assert predictor.class_names == META["class_names"]
    assert torch.allclose(predictor.logits(images), eager, atol=1e-4)


def test_conform_converts_channels_and_size():
    gray = torch.full((2, 1, 8, 8), 100, dtype=torch.uint8)
    rgb = conform(gray, [3, 16, 16])
    assert rgb.shape == (2, 3, 16, 16) and int(rgb.float().mean().round()) == 100
    back = conform(rgb, [1, 8, 8])
    assert back.shape == (2, 1, 8, 8) and int(back.float().mean().round()) == 100


def test_evaluate_cli_on_an_image_folder_made_here(tmp_path, tiny_digits, venv_env):
    """Train a small digits model, write some digits as PNGs in class folders, and let
    `automl evaluate --model --data` score them."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    genome = default_genome()
    genome.update(width=16, stages=2, lr=3e-3)
    model, _ = fit(genome, tiny_digits, 8, seed=0, device=torch.device("cpu"))
    info = ModelInfo(genome, tiny_digits.class_names, [1, 8, 8], tiny_digits.mean, tiny_digits.std, fused=False)
    save_model(tmp_path / "model.pt", model, info)
    folder = tmp_path / "my_digits"
    for index, (image, label) in enumerate(zip(tiny_digits.test.images[:60], tiny_digits.test.labels[:60])):
        target = folder / tiny_digits.class_names[label]
        target.mkdir(parents=True, exist_ok=True)
        big = image[0].numpy().repeat(4, 0).repeat(4, 1)  # 32x32: the command resizes it back
        Image.fromarray(big).save(target / f"{index}.png")
    env = dict(venv_env, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "stages.cli", "evaluate", "--model", str(tmp_path / "model.pt"), "--data", str(folder),
         "--out", str(tmp_path / "report.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["samples"] == 60 and "test accuracy" in result.stdout
    direct = load_predictor(tmp_path / "model.pt").logits(tiny_digits.test.images[:60]).argmax(1)
    expected = (direct == tiny_digits.test.labels[:60]).float().mean().item()
    assert abs(report["accuracy"] - expected) <= 0.05  # resizing 8->32->8 changes a few pixels
    assert report["accuracy"] > 0.5
    assert (tmp_path / "report.errors.png").stat().st_size > 1000


def test_evaluate_refuses_unknown_classes(tmp_path, tiny_digits):
    from pipeline.errors import UserError
    from stages.evaluate import load_any_data

    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / name / "0.png")
    with pytest.raises(UserError, match=r"classes cat, dog are not among the model's classes \(0, 1, 2"):
        load_any_data(str(tmp_path), "", tiny_digits.class_names, 8)


def test_predict_cli_classifies_a_folder_and_lists_an_unreadable_file(tmp_path, tiny_digits, venv_env):
    import csv
    import subprocess
    import sys

    from pipeline.deploy.export import EXPORTS
    from tests.helpers import ROOT

    genome = default_genome()
    genome.update(width=16, stages=2, lr=3e-3)
    model, _ = fit(genome, tiny_digits, 4, seed=0, device=torch.device("cpu"))
    model.eval()
    meta = {"class_names": tiny_digits.class_names, "input_shape": [1, 8, 8]}
    EXPORTS["pt2"].write(model, torch.rand(2, 1, 8, 8), tmp_path / "fused.pt2", meta)
    folder = tmp_path / "new_images" / "batch1"
    folder.mkdir(parents=True)
    for index, image in enumerate(tiny_digits.test.images[:12]):
        Image.fromarray(image[0].numpy()).save(folder / f"{index:02d}.png")
    (folder / "broken.png").write_bytes(b"this is not a png")
    out = tmp_path / "predictions.csv"
    result = subprocess.run(
        [sys.executable, "-m", "stages.cli", "predict", "--model", str(tmp_path / "fused.pt2"), "--images",
         str(tmp_path / "new_images"), "--out", str(out), "--top-k", "2"],
        cwd=tmp_path, env=dict(venv_env, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "12 images classified" in result.stdout and "1 unreadable" in result.stdout
    rows = {row["file"]: row for row in csv.DictReader(open(out))}
    assert len(rows) == 13 and rows["batch1/broken.png"]["class"] == "" and rows["batch1/broken.png"]["error"]
    expected = load_predictor(tmp_path / "fused.pt2").logits(tiny_digits.test.images[:12]).softmax(1)
    for index in range(12):
        row = rows[f"batch1/{index:02d}.png"]
        assert row["class"] == tiny_digits.class_names[int(expected[index].argmax())]
        assert float(row["probability"]) == pytest.approx(float(expected[index].max()), abs=1e-5)
        assert float(row["probability_2"]) <= float(row["probability"])


WRITE_EVERY_EXPORT = """
import sys
from pathlib import Path
import torch
from pipeline.deploy.export import EXPORTS
from pipeline.genome.genome import default_genome
from pipeline.nn.model import build_model
torch.manual_seed(0)
genome = default_genome()
genome.update(stages=2, width=16, residual=True, attention="se", norm="batch")
model = build_model(genome, (3, 16, 16), 10).eval()
example = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
for export in EXPORTS.values():
    export.write(model, example, Path(sys.argv[1]) / f"fused{export.suffix}", {"class_names": ["a"], "input_shape": [3, 16, 16]})
"""


def test_every_export_written_by_two_processes_has_the_same_bytes_and_the_umask_mode(tmp_path):
    """As two runs of the fuse stage do. (TorchScript numbers the classes it traces twice in
    one process, so only a fresh process gives the same bytes: the stage traces once.)"""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", WRITE_EVERY_EXPORT, str(tmp_path / name)], cwd=ROOT, check=True,
                       capture_output=True, timeout=300)
    umask = os.umask(0)
    os.umask(umask)
    names = sorted(f"fused{export.suffix}" for export in EXPORTS.values())
    for folder in ("a", "b"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == names  # no temporary folder left
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert str(ROOT).encode() not in (tmp_path / "a" / name).read_bytes(), name  # nor the checkout's path
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


@pytest.fixture(scope="module")
def digits_pt2(tmp_path_factory, tiny_digits):
    """A small trained digits model exported as .pt2, and a folder of its test images as PNGs
    in class folders, one of them broken."""
    folder = tmp_path_factory.mktemp("pt2")
    genome = default_genome()
    genome.update(width=16, stages=2, lr=3e-3)
    model, _ = fit(genome, tiny_digits, 4, seed=0, device=torch.device("cpu"))
    EXPORTS["pt2"].write(model.eval(), torch.rand(2, 1, 8, 8), folder / "fused.pt2",
                         {"class_names": tiny_digits.class_names, "input_shape": [1, 8, 8]})
    for index, (image, label) in enumerate(zip(tiny_digits.test.images[:20], tiny_digits.test.labels[:20])):
        target = folder / "images" / tiny_digits.class_names[label]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0].numpy()).save(target / f"{index:02d}.png")
    (folder / "images" / tiny_digits.class_names[0] / "broken.png").write_bytes(b"this is not a png")
    return folder


def test_predict_takes_single_files_and_lists_of_them_without_warnings(digits_pt2, tiny_digits, tmp_path, capsys):
    import csv

    from stages.predict import predict

    images = sorted((digits_pt2 / "images").rglob("0*.png"))[:3]
    out = tmp_path / "predictions.csv"
    expected = load_predictor(digits_pt2 / "fused.pt2").logits(tiny_digits.test.images[:20]).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. NumPy's "The given NumPy array is not writable"
        predict(str(digits_pt2 / "fused.pt2"), [str(images[0])], "", str(out), 1)
        rows = list(csv.DictReader(out.read_text().splitlines()))
        assert [row["file"] for row in rows] == [str(images[0])] and rows[0]["class"]
        predict(str(digits_pt2 / "fused.pt2"), [str(p) for p in images], "", str(out), 1)
    rows = {row["file"]: row for row in csv.DictReader(out.read_text().splitlines())}
    assert set(rows) == {str(p) for p in images}
    for path in images:
        assert rows[str(path)]["class"] == tiny_digits.class_names[int(expected[int(path.stem)])]
    assert "3 images classified" in capsys.readouterr().out


def test_predict_and_evaluate_errors_name_their_own_options(digits_pt2, tmp_path):
    from pipeline.errors import UserError
    from stages.evaluate import evaluate_any
    from stages.predict import predict

    with pytest.raises(UserError, match=r"^--images: .*nowhere: not found$"):
        predict(str(digits_pt2 / "fused.pt2"), [str(tmp_path / "nowhere")], "", str(tmp_path / "p.csv"), 1)
    with pytest.raises(UserError, match=r"^--sha256: required for the archive or URL"):
        (tmp_path / "batch.tar.gz").write_bytes(b"x")
        predict(str(digits_pt2 / "fused.pt2"), [str(tmp_path / "batch.tar.gz")], "", str(tmp_path / "p.csv"), 1)
    with pytest.raises(UserError, match=r"^--data: .*nowhere: not found$"):
        evaluate_any(str(digits_pt2 / "fused.pt2"), str(tmp_path / "nowhere"), "", None)


def test_evaluate_lists_an_unreadable_image_and_scores_the_others(digits_pt2, tmp_path, capsys):
    from stages.evaluate import evaluate_any

    out = tmp_path / "report.json"
    evaluate_any(str(digits_pt2 / "fused.pt2"), str(digits_pt2 / "images"), "", str(out))
    report = json.loads(out.read_text())
    assert report["samples"] == 20
    assert [entry["file"] for entry in report["unreadable"]] == ["0/broken.png"]
    assert "UnidentifiedImageError" in report["unreadable"][0]["error"]
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable images" in printed and "0/broken.png" in printed


def test_fuse_names_the_norms_it_left():
    from stages.fuse import describe_norms

    assert describe_norms({"GroupNorm": 6}) == "6 GroupNorm"
    assert describe_norms({"LayerNorm": 2, "GroupNorm": 1}) == "1 GroupNorm, 2 LayerNorm"
    assert describe_norms({}) == "none"
