"""The data a stage reads, as MLflow dataset inputs (`run.inputs`): one per split, named
after `data.dataset`, with a digest of its content and where it came from.

The digest is of the prepared tensors (shape, images, labels), so two runs that saw the
same split carry the same digest whatever the file format; the model registry compares
test accuracies only between models scored on the same test digest. Sources: a built-in
dataset is its loader (`sklearn.datasets.load_digits`, `torchvision.datasets.CIFAR10`), an
image folder its directory, archive or URL as `data.source` gives it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

SPLITS = {"train": "train", "validation": "val", "test": "test"}


def split_digest(split) -> str:
    """16 hex digits of sha256 over a split's shape, images and labels."""
    digest = hashlib.sha256(repr(tuple(split.images.shape)).encode())
    digest.update(split.images.contiguous().numpy().tobytes())
    digest.update(split.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def dataset_name(settings) -> str:
    if settings.dataset == "imagefolder":
        return f"imagefolder/{Path(settings.source.rstrip('/')).name}"
    return settings.dataset


def _source(settings):
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    if settings.dataset == "digits":
        return CodeDatasetSource({"loader": "sklearn.datasets.load_digits"})
    if settings.dataset != "imagefolder":
        from pipeline.data.sources import TORCHVISION_DATASETS

        return CodeDatasetSource({"loader": f"torchvision.datasets.{TORCHVISION_DATASETS[settings.dataset]}"})
    uri = settings.source
    if "://" not in uri:
        uri = Path(uri).resolve().as_uri()
    return resolve_dataset_source(uri)


def dataset_inputs(data, settings, contexts) -> list:
    """MLflow `DatasetInput`s for the splits named in `contexts` ('train', 'validation', 'test')."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    source, name = _source(settings), dataset_name(settings)
    inputs = []
    for context in contexts:
        split = getattr(data, SPLITS[context])
        dataset = MetaDataset(source, name=name, digest=split_digest(split))
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)]))
    return inputs
