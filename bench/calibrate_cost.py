"""Calibrate the reference-seconds cost model (`pipeline/train/cost.py`) on real trainings.

Trains a spread of genomes (the portfolio's recipes and random samples of params.yaml's
space, each at several batch sizes) for one epoch on one CPU thread, on digits and on a
subset of the shared CIFAR-10 archive, and fits seconds per epoch = FLOPs / rate + steps x
seconds per step + seconds per epoch by non-negative least squares. Prints the constants to
put in `pipeline/train/cost.py` and how well they predict (R^2, median and 90th-percentile
relative error per dataset); writes bench/results/cost_calibration.json.

    python bench/calibrate_cost.py [--samples 16] [--images 3000]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import SHARED, SHARED_SHA256  # noqa: E402
from pipeline.data.prepare import prepare  # noqa: E402
from pipeline.data.settings import DataSettings  # noqa: E402
from pipeline.genome.genome import repair  # noqa: E402
from pipeline.genome.portfolio import portfolio  # noqa: E402
from pipeline.nn.measure import count_flops  # noqa: E402
from pipeline.nn.model import build_model  # noqa: E402
from pipeline.params import params_from_dict  # noqa: E402
from pipeline.train import cost  # noqa: E402
from pipeline.train.fit import fit  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def datasets(images: int) -> dict:
    out = {"digits": prepare(DataSettings(dataset="digits"), 0, RESULTS / "downloads")}
    if SHARED.exists():
        settings = DataSettings(dataset="imagefolder", source=str(SHARED), sha256=SHARED_SHA256, max_samples=images,
                                val_fraction=0.2, test_fraction=0.1)
        out["cifar10"] = prepare(settings, 0, RESULTS / "downloads")
    else:
        print(f"calibrate_cost: {SHARED} not found; digits only")
    return out


def genomes(space, input_shape, samples: int, rng: random.Random) -> list[dict]:
    out = portfolio(space, input_shape)
    out += [repair(space.sample(rng), space, input_shape) for _ in range(samples)]
    return [repair({**g, "batch_size": b}, space, input_shape) for g in out for b in (32, 128)]


def measure(genome: dict, data) -> dict | None:
    model = build_model(genome, data.input_shape, data.num_classes, data.mean, data.std)
    flops = count_flops(model, data.input_shape)
    parts = cost.epoch_cost(genome, flops, len(data.train), len(data.val))
    started = time.perf_counter()
    try:
        fit(genome, data, 1, 0, torch.device("cpu"))
    except Exception as err:  # a diverging candidate still took its time, but is not a clean sample
        print(f"  skipped ({type(err).__name__})")
        return None
    return {"flops": parts.train_flops + parts.eval_flops, "steps": parts.steps, "seconds": time.perf_counter() - started,
            "genome": genome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16, help="random genomes per dataset (plus the portfolio)")
    parser.add_argument("--images", type=int, default=3000, help="CIFAR-10 subset size")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    params = params_from_dict(yaml.safe_load((ROOT / "params.yaml").read_text()))
    rows = []
    for name, data in datasets(args.images).items():
        for genome in genomes(params.space, data.input_shape, args.samples, random.Random(0)):
            row = measure(genome, data)
            if row:
                rows.append({"dataset": name, **row})
                print(f"{name}: {row['flops'] / 1e9:.2f} GFLOP, {row['steps']} steps: {row['seconds']:.2f} s", flush=True)
    from scipy.optimize import nnls

    x = np.array([[r["flops"], r["steps"], 1.0] for r in rows])
    y = np.array([r["seconds"] for r in rows])
    weights = 1.0 / y  # fit relative errors: small and large trainings count alike
    (inverse_rate, per_step, per_epoch), _ = nnls(x * weights[:, None], y * weights)
    predicted = x @ np.array([inverse_rate, per_step, per_epoch])
    report = {"flops_per_second": 1.0 / inverse_rate if inverse_rate else None, "seconds_per_step": per_step,
              "seconds_per_epoch": per_epoch, "samples": len(rows),
              "r2": float(1 - ((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum())}
    for name in sorted({r["dataset"] for r in rows}):
        mask = np.array([r["dataset"] == name for r in rows])
        errors = np.abs(predicted[mask] - y[mask]) / y[mask]
        report[name] = {"samples": int(mask.sum()), "median_relative_error": float(np.median(errors)),
                        "p90_relative_error": float(np.percentile(errors, 90)),
                        "seconds_measured": float(y[mask].sum()), "seconds_predicted": float(predicted[mask].sum())}
    report["rows"] = [{k: v for k, v in r.items() if k != "genome"} for r in rows]
    (RESULTS / "cost_calibration.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
