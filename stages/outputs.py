"""The paths dvc.yaml declares, in one place (relative to the project root), and the
candidate store, which lives outside DVC and git."""
import os
from pathlib import Path

from pipeline.fileio import project_root

PREPARED = Path("data/prepared")
DOWNLOADS = Path("data/downloads")  # raw downloads and extracted archives, a cache outside DVC
SEARCH = Path("search")
BEST = SEARCH / "best.yaml"
HISTORY = SEARCH / "history.csv"
HALL_OF_FAME = SEARCH / "hall_of_fame.json"
PARETO = SEARCH / "pareto.csv"
BUDGET = SEARCH / "budget.json"  # what the search spent of the pipeline's budget, for the train stage
RECORD = SEARCH / "checkpoint" / "latest.json"  # the last search's identity and progress, persisted by DVC
MODELS = Path("models")
MODEL = MODELS / "model.pt"
FUSED = MODELS / "fused.pt"
EXPORTS_DIR = MODELS / "exports"  # fused.onnx, fused.pt2 (and fused.torchscript.pt when asked for)
METRICS = Path("metrics")
PLOTS = METRICS / "plots"
# Wall-clock seconds and latencies, one file per stage: outputs no stage depends on and no
# DVC metrics, so they never rerun anything and `dvc exp show` leaves them out
# (`dvc metrics show metrics/timings/fuse.json` shows them).
TIMINGS = METRICS / "timings"
EVALUATE_REPORT = METRICS / "evaluate_report.json"  # per-class precision/recall and confusion matrix
CHECKED = METRICS / "params.ok"  # the check stage's constant output; every stage depends on it


def store_dir() -> Path:
    """The candidate store shared by every search of the project: `.automl/store` at the
    project root (the real one under `dvc exp run --queue`), or $AUTOML_STORE."""
    return Path(os.environ.get("AUTOML_STORE") or project_root() / ".automl" / "store")
