"""Final training options, measured: `train.select` (last | best) x `train.refit` (false | true).

For each seed the data is split with that seed and one genome is trained for `--epochs`
on the training split (select last and best come from that one run), then refit on
train + validation for the chosen number of epochs; every model is scored on the test
split, which none of them saw. Digits by default; `--cifar N` uses an N-image stratified
subset of the shared CIFAR-10 JPEG archive. Writes bench/results/final_training[_cifar].json.

    python bench/final_training.py --genome search/best.yaml --seeds 0,1,2,3,4
    python bench/final_training.py --cifar 10000 --epochs 15 --seeds 0,1
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throughput import SHARED, SHARED_SHA256  # noqa: E402
from pipeline.data.prepare import prepare  # noqa: E402
from pipeline.data.settings import DataSettings  # noqa: E402
from pipeline.genome.files import load_best_yaml  # noqa: E402
from pipeline.genome.genome import default_genome, genome_seed  # noqa: E402
from pipeline.nn.inference import predict_logits  # noqa: E402
from pipeline.runtime import configure  # noqa: E402
from pipeline.train.final import with_validation_in_training  # noqa: E402
from pipeline.train.fit import fit  # noqa: E402

#: conv-BN-ReLU, SGD + Nesterov, one-cycle, flip: the textbook recipe for CIFAR-sized images.
TEXTBOOK = dict(stages=3, blocks_per_stage=2, width=32, kernel=3, padding="same", norm="batch", activation="relu",
                pooling="max", global_pool="avg", residual=False, attention="none", dropout=0.0,
                optimizer="sgd_nesterov", lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=128,
                scheduler="onecycle", loss="cross_entropy", label_smoothing=0.0, augment="flip")


def test_accuracy(model, data) -> float:
    logits = predict_logits(model, data.test.images, torch.device("cpu"))
    return float((logits.argmax(1) == data.test.labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", default="search/best.yaml", help="best.yaml to train (digits)")
    parser.add_argument("--cifar", type=int, default=0, help="images of the shared CIFAR-10 archive (textbook genome)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    configure(torch.device("cpu"), 0)
    if args.cifar:
        genome, name = dict(default_genome(), **TEXTBOOK), "cifar"
    else:
        genome, name = load_best_yaml(Path(args.genome)), "digits"
    rows = []
    for seed in map(int, args.seeds.split(",")):
        if args.cifar:
            settings = DataSettings(dataset="imagefolder", source=str(SHARED), sha256=SHARED_SHA256,
                                    max_samples=args.cifar, val_fraction=0.15, test_fraction=0.2)
        else:
            settings = DataSettings()
        data = prepare(settings, seed, Path(__file__).resolve().parent / "results" / "downloads")
        train_seed, cpu = genome_seed(seed, genome, args.epochs), torch.device("cpu")
        row = {"seed": seed}
        for select in ("last", "best"):  # one trajectory, two choices of weights
            started = time.perf_counter()
            model, selection = fit(genome, data, args.epochs, train_seed, cpu, select=select)
            row[select], row[f"{select}_epoch"] = test_accuracy(model, data), selection.chosen_epoch
            row[f"{select}_seconds"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            model, _ = fit(genome, with_validation_in_training(data), selection.chosen_epoch, train_seed, cpu)
            row[f"{select}+refit"] = test_accuracy(model, data)
            row[f"{select}+refit_seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(row, flush=True)
    options = ["last", "best", "last+refit", "best+refit"]
    summary = {o: {"mean": round(statistics.mean(r[o] for r in rows), 4),
                   "stdev": round(statistics.stdev(r[o] for r in rows), 4) if len(rows) > 1 else 0.0} for o in options}
    source = f"shared CIFAR-10 JPEG archive, {args.cifar} images" if args.cifar else "digits"
    result = {"data": source, "epochs": args.epochs, "genome": genome, "per_seed": rows, "test_accuracy": summary}
    out = Path(args.out or Path(__file__).resolve().parent / "results" / f"final_training_{name}.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    for option, stats in summary.items():
        print(f"{option:12s} test accuracy {stats['mean']:.4f} +- {stats['stdev']:.4f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
