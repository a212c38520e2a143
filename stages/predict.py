"""`automl predict`: classify new, unlabelled images with any exported model.

`--images` (repeatable, or paths after the options) takes image files, folders (searched
recursively), archives and URLs; every error names `--images` or `--sha256`.
"""
from pathlib import Path

from pipeline.data.sources import IMAGE_SUFFIXES, fetch_folder, is_archive, is_url
from pipeline.deploy.predict import load_predictor, predict_files
from pipeline.errors import UserError
from pipeline.fileio import write_csv
from stages.outputs import DOWNLOADS


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def collect(sources: list[str], sha256: str) -> tuple[list[Path], list[str]]:
    """(files, their names in the CSV): a file as given; a folder's or archive's images
    relative to it, under the name given when there is more than one source."""
    files, names = [], []
    for source in sources:
        local = Path(source)
        if local.is_file() and not is_archive(source):
            files.append(local)
            names.append(source)
            continue
        if not is_url(source) and not local.exists():
            raise UserError(f"--images: {source}: not found")
        root = local if local.is_dir() else fetch_folder(source, sha256, DOWNLOADS, option="--images", checksum="--sha256")
        found = image_files(root)
        if not found:
            raise UserError(f"--images: {source}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += found
        names += [str(Path(source) / p.relative_to(root)) if len(sources) > 1 else str(p.relative_to(root)) for p in found]
    return files, names


def predict(model_path: str, images: list[str], sha256: str, out: str, top_k: int) -> None:
    predictor = load_predictor(Path(model_path))
    files, names = collect(images, sha256)
    predictions = predict_files(predictor, files, top_k, names=names)
    header = ["file", "class", "probability"]
    for k in range(2, top_k + 1):
        header += [f"class_{k}", f"probability_{k}"]
    rows = []
    for p in predictions:
        cells = [p.file]
        for k in range(top_k):
            cells += [p.top[k][0], f"{p.top[k][1]:.6f}"] if k < len(p.top) else ["", ""]
        rows.append(cells + [p.error])
    write_csv(Path(out), header + ["error"], rows)
    failed = sum(1 for p in predictions if p.error)
    print(f"predict: {len(predictions) - failed} images classified with {model_path}"
          + (f", {failed} unreadable (listed in {out} with their error)" if failed else "") + f"; wrote {out}")
