"""The paths dvc.yaml declares, in one place (relative to the project root)."""
from pathlib import Path

PREPARED = Path("data/prepared")
DOWNLOADS = Path("data/downloads")  # raw downloads and extracted archives, a cache outside DVC
SEARCH = Path("search")
BEST = SEARCH / "best.yaml"
HISTORY = SEARCH / "history.csv"
HALL_OF_FAME = SEARCH / "hall_of_fame.json"
PARETO = SEARCH / "pareto.csv"
CHECKPOINT = SEARCH / "checkpoint" / "latest.json"  # persisted by DVC so a killed search resumes
MODELS = Path("models")
MODEL = MODELS / "model.pt"
FUSED = MODELS / "fused.pt"
METRICS = Path("metrics")
PLOTS = METRICS / "plots"
