"""The CUDA paths in one prepared run: throughput, epoch times, a short search, fusion and export.

Runs without MLflow and DVC (the library API, as `bench/time_to_accuracy.py` does), on
CIFAR-10 from a copy of the shared JPEG archive, and writes one JSON of what it measured;
a step that fails is recorded with its traceback and the next one still runs:

    throughput   bench/throughput.py's three genomes, our trainer against a DataLoader loop
    epochs       the mid-size genome trained `--epochs` epochs with bf16 autocast, channels_last
                 and the data resident on the GPU: seconds per epoch and test accuracy
    search       the default strategy, a short search on `cuda` (serial backend), then the
                 same on the processes backend with `--workers` spawned workers sharing the GPU
    final        the search's winner trained `--epochs` epochs, fused, scored on the test
                 split (eager and fused), exported to ONNX and torch.export with parity checked

    python bench/gpu_check.py --archive .devdata/cifar10-jpeg-train.tar.gz --out gpu_check.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import SHARED_SHA256, genome_for, measure  # noqa: E402
from pipeline.data.prepare import prepare  # noqa: E402
from pipeline.data.settings import DataSettings  # noqa: E402
from pipeline.deploy.export import export_checked  # noqa: E402
from pipeline.deploy.fusion import fuse_model  # noqa: E402
from pipeline.genome.portfolio import portfolio  # noqa: E402
from pipeline.genome.problem import CNNProblem  # noqa: E402
from pipeline.nn.inference import predict_logits, to_inputs  # noqa: E402
from pipeline.params import params_from_dict  # noqa: E402
from pipeline.runtime import configure  # noqa: E402
from pipeline.search import run_search  # noqa: E402
from pipeline.train.final import train_final  # noqa: E402


def accuracy(model: torch.nn.Module, split, device: torch.device) -> float:
    logits = predict_logits(model.eval(), split.images, device)
    return float((logits.argmax(1).cpu() == split.labels).float().mean())


def timed_training(genome: dict, data, epochs: int, device: torch.device, bf16: bool) -> tuple[torch.nn.Module, dict]:
    """Train `genome` for `epochs` (no refit) and time each epoch (validation included)."""
    stamps = [time.perf_counter()]
    model, _ = train_final(genome, data, epochs, 0, device, select="last", refit=False, bf16=bf16,
                           on_epoch=lambda record: stamps.append(time.perf_counter()))
    seconds = [round(b - a, 3) for a, b in zip(stamps, stamps[1:])]
    steps = len(data.train) // genome["batch_size"]
    return model, {"epochs": epochs, "epoch_seconds": seconds,
                   "images_per_s_after_first": round(steps * genome["batch_size"] * (len(seconds) - 1)
                                                     / max(sum(seconds[1:]), 1e-9), 1) if len(seconds) > 1 else None,
                   "test_accuracy": accuracy(model, data.test, device)}


def short_search(data, device: torch.device, bf16: bool, args, backend: str) -> tuple[dict, dict]:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["search"].update(population=args.population, generations=args.generations, epochs=args.search_epochs,
                         backend=backend, workers=args.workers if backend == "processes" else 1)
    params = params_from_dict(raw)
    problem = CNNProblem(params.space, data, str(device), bf16, params.search.max_params)
    started = time.perf_counter()
    outcome = run_search(problem, params.search, 0, warm_start=portfolio(params.space, data.input_shape),
                         log=lambda message: print(f"  {message}", flush=True))
    results = [result for _, _, result in outcome.history]
    return outcome.best_genome, {
        "backend": backend, "workers": args.workers if backend == "processes" else 1,
        "seconds": round(time.perf_counter() - started, 1), "candidates": len(results),
        "failures": {r.key[:8]: f"{r.failure}: {r.detail[:300]}" for r in results if r.failure},
        "candidate_seconds": [round(r.seconds, 2) for r in results],
        "best_val_accuracy": outcome.best_result.score, "stop_reason": outcome.stop_reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(ROOT / ".devdata" / "cifar10-jpeg-train.tar.gz"))
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the timed and the final training")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--search-epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--steps", default="throughput,epochs,search,processes,final")
    parser.add_argument("--out", default="gpu_check.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    configure(device, 0)
    bf16 = device.type == "cuda"
    out = Path(args.out)
    report: dict = {"torch": torch.__version__, "python": platform.python_version(), "device": args.device,
                    "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None, "bf16": bf16,
                    "threads": torch.get_num_threads(), "steps": {}}

    def step(name: str, work) -> object:
        if name not in args.steps.split(","):
            return None
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            value, entry = work()
            entry["step_seconds"] = round(time.perf_counter() - started, 1)
        except Exception as error:  # noqa: BLE001 - every failure is reported, the next step runs
            value, entry = None, {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-4000:],
                                  "step_seconds": round(time.perf_counter() - started, 1)}
        report["steps"][name] = entry
        print(json.dumps({k: v for k, v in entry.items() if k != "traceback"})[:2000], flush=True)
        if "traceback" in entry:
            print(entry["traceback"], flush=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        return value

    started = time.perf_counter()
    settings = DataSettings(dataset="imagefolder", source=args.archive, sha256=SHARED_SHA256, max_samples=args.images,
                            val_fraction=0.1, test_fraction=0.1)
    with tempfile.TemporaryDirectory() as downloads:
        data = prepare(settings, 0, Path(downloads))
    report["data"] = {"train": len(data.train), "val": len(data.val), "test": len(data.test),
                      "shape": list(data.input_shape), "prepare_seconds": round(time.perf_counter() - started, 1)}
    print(report["data"], flush=True)

    step("throughput", lambda: (None, {name: measure(name, data.train.images, data.train.labels, device)
                                      for name in ("lenet", "midsize", "residual_attention")}))
    step("epochs", lambda: (None, timed_training(genome_for("midsize"), data, args.epochs, device, bf16)[1]))
    best = step("search", lambda: short_search(data, device, bf16, args, "serial"))
    step("processes", lambda: short_search(data, device, bf16, args, "processes"))

    def final():
        genome = best or genome_for("midsize")
        model, entry = timed_training(genome, data, args.epochs, device, bf16)
        fused, _ = fuse_model(model.cpu().eval())
        entry["fused_test_accuracy_cpu"] = accuracy(fused, data.test, torch.device("cpu"))
        floats = to_inputs(data.test.images[:256])
        entry["fused_max_logit_difference"] = float((predict_logits(model.cpu(), data.test.images[:256], torch.device("cpu"))
                                                     - predict_logits(fused, data.test.images[:256], torch.device("cpu"))).abs().max())
        with tempfile.TemporaryDirectory() as folder:
            for kind in ("onnx", "pt2"):
                try:
                    _, _, difference = export_checked(fused, kind, Path(folder), {}, floats[:2], floats)
                    entry[f"{kind}_max_difference"] = difference
                except Exception as error:  # noqa: BLE001
                    entry[f"{kind}_error"] = f"{type(error).__name__}: {error}"[:1000]
        entry["genome"] = genome
        return None, entry

    step("final", final)
    report["seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out} after {report['seconds']} s")


if __name__ == "__main__":
    main()
