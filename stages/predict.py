"""`automl predict`: classify new, unlabelled images with any exported model."""
from pathlib import Path

from pipeline.data.sources import IMAGE_SUFFIXES, fetch_folder
from pipeline.deploy.predict import load_predictor, predict_files
from pipeline.errors import UserError
from pipeline.fileio import write_csv
from stages.outputs import DOWNLOADS


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def predict(model_path: str, images: str, sha256: str, out: str, top_k: int) -> None:
    predictor = load_predictor(Path(model_path))
    root = fetch_folder(images, sha256, DOWNLOADS) if not Path(images).is_dir() else Path(images)
    files = image_files(root)
    if not files:
        raise UserError(f"--images: {images}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    predictions = predict_files(predictor, files, top_k, root=root)
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
