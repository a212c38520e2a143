"""Training throughput: our tensor trainer against a textbook PyTorch loop, same process.

Three reference genomes (LeNet, a mid-size conv-BN net, a residual+attention
net) train one epoch on CIFAR-sized data (the shared CIFAR-10 JPEG archive when present,
else random tensors of that shape) with (a) `pipeline.train.fit.train_one_epoch`: the split
as one uint8 tensor on the device, index-sliced batches, flip on the batch, and (b) the
textbook loop: a Dataset of PIL images with torchvision transforms per sample
(RandomHorizontalFlip, ToTensor, Normalize) behind a `DataLoader` (shuffle, 2 workers).
Same model, batch size, optimizer and augmentation; images/s and the ratio go to
bench/results/throughput.json.

    python bench/throughput.py [--images 10000] [--devices cpu,cuda]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.genome.genome import default_genome  # noqa: E402
from pipeline.nn.model import build_model  # noqa: E402
from pipeline.runtime import configure  # noqa: E402
from pipeline.train.fit import train_one_epoch, use_channels_last  # noqa: E402
from pipeline.train.optim import Schedule, make_optimizer  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg-train.tar.gz"
SHARED_SHA256 = "e681df2639a6884a922718cfd62239dc5d2f1baf07c22dfa6ef7a948116090b9"

REFERENCE = {
    "lenet": dict(stages=2, blocks_per_stage=1, width=6, kernel=5, padding="valid", pooling="max",
                  global_pool="flatten", norm="none", residual=False, attention="none"),
    "midsize": dict(stages=3, blocks_per_stage=1, width=32, kernel=3, padding="same", pooling="max",
                    global_pool="avg", norm="batch", residual=False, attention="none"),
    "residual_attention": dict(stages=3, blocks_per_stage=1, width=32, kernel=3, padding="same", pooling="max",
                               global_pool="avg", norm="batch", residual=True, attention="se"),
}


def genome_for(name: str) -> dict:
    genome = default_genome()
    genome.update(REFERENCE[name], optimizer="sgd_momentum", lr=0.01, batch_size=128, augment="flip")
    return genome


def load_images(limit: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    if SHARED.exists():
        from pipeline.data.prepare import prepare
        from pipeline.data.settings import DataSettings

        settings = DataSettings(dataset="imagefolder", source=str(SHARED), sha256=SHARED_SHA256, max_samples=limit,
                              val_fraction=0.01, test_fraction=0.01)
        data = prepare(settings, 0, Path(__file__).resolve().parent / "results" / "downloads")
        return data.train.images, data.train.labels, f"shared CIFAR-10 JPEG archive ({len(data.train)} images)"
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (limit, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (limit,), generator=generator)
    return images, labels, f"random tensors (shared archive not found), {limit} images"


class PilDataset(torch.utils.data.Dataset):
    """What a tutorial does: one PIL image per item, transformed per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        from torchvision import transforms

        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transforms.Compose(
            [transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(mean, std)]
        )

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def textbook_epoch(model, genome, images, labels, device) -> float:
    loader = torch.utils.data.DataLoader(
        PilDataset(images, labels, [0.5] * 3, [0.25] * 3), batch_size=genome["batch_size"], shuffle=True,
        num_workers=2, drop_last=True, persistent_workers=False,
    )
    optimizer = make_optimizer(genome, model.parameters())
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    seen = 0
    started = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def ours_epoch(model, genome, images, labels, device) -> float:
    train_x, train_y = images.to(device), labels.to(device)
    optimizer = make_optimizer(genome, model.parameters())
    steps = len(train_y) // genome["batch_size"]
    schedule = Schedule(genome, optimizer, 1, steps)
    generator = torch.Generator(device=device).manual_seed(0)
    started = time.perf_counter()
    total = train_one_epoch(model, optimizer, schedule, genome, train_x, train_y, genome["batch_size"], generator,
                            device, bf16=device.type == "cuda")
    total.item()  # the one sync of the epoch
    return steps * genome["batch_size"] / (time.perf_counter() - started)


def measure(name: str, images, labels, device) -> dict:
    genome = genome_for(name)

    def fresh():
        torch.manual_seed(0)
        model = build_model(genome, (3, 32, 32), 10, [0.5] * 3, [0.25] * 3).to(device)
        return model.to(memory_format=torch.channels_last) if use_channels_last((3, 32, 32)) else model

    warm = min(len(labels), 2048)
    ours_epoch(fresh(), genome, images[:warm], labels[:warm], device)  # warm-up (cuDNN, allocator)
    ours = ours_epoch(fresh(), genome, images, labels, device)
    textbook = textbook_epoch(fresh(), genome, images, labels, device)
    return {"ours_images_per_s": round(ours, 1), "textbook_images_per_s": round(textbook, 1), "ratio": round(ours / textbook, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "throughput.json"))
    args = parser.parse_args()
    images, labels, source = load_images(args.images)
    results: dict = {"data": source, "threads": torch.get_num_threads()}
    for device_name in args.devices.split(","):
        device = torch.device(device_name)
        configure(device, 0)
        results[device_name] = {}
        for name in REFERENCE:
            results[device_name][name] = measure(name, images, labels, device)
            print(device_name, name, results[device_name][name], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
