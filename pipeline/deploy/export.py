"""Deployable copies of a fused model: TorchScript and ONNX, each checked against PyTorch.

TorchScript is traced (the architecture has no data-dependent control flow; its shape
branches are fixed once the input size is); ONNX goes through `torch.onnx.export` with a
dynamic batch dimension and is run with ONNX Runtime. `check_export` compares either one
with the eager model on real inputs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from pipeline.fileio import atomic_write

EXPORT_SUFFIX = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}


META_KEY = "automl.json"


def export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    with torch.no_grad():
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
    extra = {META_KEY: json.dumps(meta)}
    atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp), _extra_files=extra))


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    """ONNX with a dynamic batch; class names and input shape ride in the metadata."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=65536)

    def write(tmp: Path) -> None:
        torch.onnx.export(
            model.eval(), (example,), str(tmp), input_names=["images"], output_names=["logits"],
            dynamic_shapes={"x": {0: batch}}, verbose=False, external_data=False,
        )
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta)
        onnx.save(proto, str(tmp))

    atomic_write(path, write)


def read_meta(path: Path) -> dict:
    """The class names and input shape stored in an exported file."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(props.get(META_KEY, "{}"))
    extra = {META_KEY: ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[META_KEY] or "{}")


EXPORTERS = {"torchscript": export_torchscript, "onnx": export_onnx}


def load_runner(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable float images -> logits for an exported file (TorchScript or ONNX)."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_onnx(images: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {name: images.contiguous().numpy()})[0])

        return run_onnx
    scripted = torch.jit.load(str(path), map_location="cpu").eval()

    def run_script(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return scripted(images)

    return run_script


def max_difference(reference: torch.nn.Module, runner: Callable, images: torch.Tensor) -> float:
    with torch.inference_mode():
        expected = reference.eval()(images)
    return float((runner(images) - expected).abs().max())
