"""Trainer ablation: the speed-run recipe as published, each of its techniques removed in turn, ours, and the portfolio's best.

On the time-to-accuracy benchmark's CIFAR-10 subset (10,000 images: train / validation /
a test split scored once, at the end), each variant trains for a fixed number of epochs on
one core with no search; every epoch's validation accuracy is kept with the wall time so
far, so the curves show accuracy against epochs and against time. The final model is fused
(as the pipeline ships it) and scored on the test split. Variants:

- `portfolio`: the portfolio recipe the time-to-accuracy searches chose (conv-bn-relu,
  Nesterov SGD, one-cycle, random flips);
- `published`: the speed runs' recipe as published (airbench94's choices, widths and batch
  scaled to a CPU: batch 128, the alternating flip with a 2-pixel reflected translation);
- `-<technique>`: the published recipe with one technique replaced by the plain choice
  (`-whiten`: no whitening stem, `-bn_no_scale`: learnable batch-norm scale,
  `-derandomized_flip`: random flips, `-translate`: no translation, `-tta`: one pass,
  `-label_smoothing`: none, `-gelu`: ReLU, `-max_pool_head`: global average pool);
- `+ema`: the published recipe with an EMA of the weights (decay 0.99);
- `-translate-label_smoothing` (and with `-bn_no_scale` or `+ema`): leaner recipes the
  single removals point to, several techniques changed at once;
- `speed_run`: `pipeline.genome.portfolio.SPEED_RUN` for this input, the portfolio's recipe
  (the published one without translation, at batch 64).
- `portfolio+batch_64`: the portfolio's best at the speed-run recipe's batch of 64 (how much of
  the speed run's lead is its batch size).

    python bench/trainer_ablation.py --epochs 8 --seeds 0,1,2

Finished runs are kept in the JSON, so a rerun only trains what is missing. The README table
between the markers named after the JSON file (`trainer-ablation`, or `trainer-ablation-confirm`
for `--out bench/results/trainer_ablation_confirm.json`) is rewritten from it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.readme import update_readme  # noqa: E402
from bench.time_to_accuracy import data_for, interval  # noqa: E402
from pipeline.deploy.fusion import fuse_model  # noqa: E402
from pipeline.genome.genome import default_genome, genome_seed  # noqa: E402
from pipeline.genome.portfolio import RECIPES, scaled, speed_run  # noqa: E402
from pipeline.nn.inference import predict_logits  # noqa: E402
from pipeline.train.fit import fit  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OUT = RESULTS / "trainer_ablation.json"
PORTFOLIO_RECIPE = "conv-bn-relu, sgd+nesterov, one-cycle"

#: The published recipe: `SPEED_RUN` with airbench's batch (scaled to 128) and translation.
PUBLISHED = {"batch_size": 128, "augment": "alternating_flip_translate"}

#: What each ablation changes in the published recipe.
CHANGES: dict[str, dict] = {
    "published": {},
    "-whiten": {"whiten": False},
    "-bn_no_scale": {"norm": "batch"},
    "-derandomized_flip": {"augment": "flip_translate"},
    "-translate": {"augment": "alternating_flip"},
    "-tta": {"tta": False},
    "-label_smoothing": {"label_smoothing": 0.0},
    "-gelu": {"activation": "relu"},
    "-max_pool_head": {"global_pool": "avg"},
    "+ema": {"ema": 0.99},
    "-translate-label_smoothing": {"augment": "alternating_flip", "label_smoothing": 0.0},
    "-translate-label_smoothing-bn_no_scale": {"augment": "alternating_flip", "label_smoothing": 0.0, "norm": "batch"},
    "-translate-label_smoothing+ema": {"augment": "alternating_flip", "label_smoothing": 0.0, "ema": 0.99},
}
#: What each portfolio variant changes in the portfolio's best recipe.
PORTFOLIO_CHANGES: dict[str, dict] = {"portfolio": {}, "portfolio+batch_64": {"batch_size": 64}}
VARIANTS = ("portfolio", *CHANGES, "speed_run", "portfolio+batch_64")


def genome_of(variant: str, input_shape) -> dict:
    if variant in PORTFOLIO_CHANGES:
        return {**scaled(RECIPES[PORTFOLIO_RECIPE], input_shape), **PORTFOLIO_CHANGES[variant]}
    if variant == "speed_run":
        return {**default_genome(), **speed_run(input_shape)}
    return {**default_genome(), **speed_run(input_shape), **PUBLISHED, **CHANGES[variant]}


def run_one(job: tuple[str, int, int, int]) -> dict:
    variant, epochs, seed, images = job
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = data_for(seed, images)
    genome = genome_of(variant, data.input_shape)
    curve, started = [], time.perf_counter()

    def on_epoch(record):
        curve.append({"epoch": record.epoch, "val_accuracy": record.val_accuracy,
                      "seconds": round(time.perf_counter() - started, 2)})

    model, fitted = fit(genome, data, epochs, genome_seed(seed, genome, epochs), torch.device("cpu"), on_epoch=on_epoch)
    seconds = time.perf_counter() - started
    fused, _ = fuse_model(model.cpu().eval())
    logits = predict_logits(fused, data.test.images, torch.device("cpu"))
    accuracy = float((logits.argmax(1) == data.test.labels).float().mean())
    return {"variant": variant, "epochs": epochs, "seed": seed, "test_accuracy": accuracy,
            "seconds": round(seconds, 1), "params": fitted.params, "curve": curve, "genome": genome}


def reached(curve: list[dict], target: float) -> float | None:
    """Seconds until the validation accuracy first reached `target`; None if it never did."""
    return next((point["seconds"] for point in curve if point["val_accuracy"] >= target), None)


def table(runs: list[dict]) -> str:
    lines = ["| variant | epochs | test accuracy, mean [95% CI] | per seed | vs published | wall s (mean) | "
             "s to the portfolio's final val. accuracy |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for epochs in sorted({r["epochs"] for r in runs}):
        by = {v: sorted((r for r in runs if r["variant"] == v and r["epochs"] == epochs), key=lambda r: r["seed"])
              for v in VARIANTS}
        base = {r["seed"]: r for r in by["portfolio"]}
        fast = {r["seed"]: r["test_accuracy"] for r in by["published"]}
        for variant, rows in by.items():
            if not rows:
                continue
            mean, low, high = interval([r["test_accuracy"] for r in rows])
            paired = [r["test_accuracy"] - fast[r["seed"]] for r in rows if r["seed"] in fast]
            delta = f"{statistics.mean(paired):+.4f}" if paired and variant != "published" else ""
            times = [reached(r["curve"], base[r["seed"]]["curve"][-1]["val_accuracy"]) for r in rows if r["seed"] in base]
            when = ", ".join("never" if t is None else f"{t:.0f}" for t in times)
            lines.append(f"| {variant} | {epochs} | {mean:.4f} [{low:.4f}, {high:.4f}] | "
                         + ", ".join(f"{r['test_accuracy']:.4f}" for r in rows)
                         + f" | {delta} | {statistics.mean(r['seconds'] for r in rows):.0f} | {when} |")
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], images: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for index, variant in enumerate(VARIANTS):
        rows = [r for r in runs if r["variant"] == variant]
        for number, row in enumerate(rows):
            style = dict(color=f"C{index % 10}", linestyle="-" if index < 10 else "--", alpha=0.8,
                         label=variant if number == 0 else None)
            by_epoch.plot([p["epoch"] for p in row["curve"]], [p["val_accuracy"] for p in row["curve"]], **style)
            by_time.plot([p["seconds"] / 60 for p in row["curve"]], [p["val_accuracy"] for p in row["curve"]], **style)
    by_epoch.set_xlabel("epoch")
    by_time.set_xlabel("wall time, minutes (one core)")
    by_epoch.set_ylabel("validation accuracy")
    for ax in (by_epoch, by_time):
        ax.grid(alpha=0.3)
    by_time.legend(fontsize=7)
    fig.suptitle(f"CIFAR-10, {images:,} images: the speed runs' recipe as published, each technique removed, "
                 "the portfolio's speed-run recipe and its best textbook recipe", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="8", help="epochs per run (comma-separated for several)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one core each")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    out = Path(args.out)
    runs = json.loads(out.read_text())["runs"] if out.exists() else []
    done = {(r["variant"], r["epochs"], r["seed"]) for r in runs}
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"trainer_ablation: unknown variants {sorted(unknown)}; expected some of {', '.join(VARIANTS)}")
    jobs = [(v, int(e), int(s), args.images) for e in args.epochs.split(",") for s in args.seeds.split(",")
            for v in args.variants.split(",") if (v, int(e), int(s)) not in done]
    for seed in {job[2] for job in jobs}:
        data_for(seed, args.images)  # prepared once, before the jobs read it
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(run_one, jobs):
            runs.append(row)
            print({k: v for k, v in row.items() if k not in ("genome", "curve")}, flush=True)
            out.write_text(json.dumps({"images": args.images, "runs": runs}, indent=1) + "\n")
    plot(runs, args.images, out.with_suffix(".png"))
    text = table(runs)
    print(text)
    markers = out.stem.replace("_", "-")  # trainer_ablation.json fills <!-- trainer-ablation:start -->
    print("README table updated" if update_readme(text, markers) else f"README has no {markers} markers")


if __name__ == "__main__":
    main()
