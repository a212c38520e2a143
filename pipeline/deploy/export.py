"""Deployable copies of a fused model, each carrying its class names and input shape:
ONNX (run with ONNX Runtime), torch.export's `.pt2` (an ExportedProgram, loaded without
pickle) and, on request, TorchScript (deprecated since PyTorch 2.14).

`EXPORTS` maps a `fuse.export` name to its file suffix, the function that writes it and the
functions that read it back (a callable float images -> logits, and the metadata), so the
fuse stage, `evaluate` and `predict` handle every format the same way. Every export has a
dynamic batch dimension; `max_difference` checks one against the eager model.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from pipeline.errors import UserError
from pipeline.fileio import atomic_write

META_KEY = "automl.json"
Runner = Callable[[torch.Tensor], torch.Tensor]


ONNX_STACK_TRACE = "pkg.torch.onnx.stack_trace"


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=65536)


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    import onnx

    def write(tmp: Path) -> None:
        torch.onnx.export(model.eval(), (example,), str(tmp), input_names=["images"], output_names=["logits"],
                          dynamic_shapes={"x": {0: _batch_dim()}}, verbose=False, external_data=False)
        proto = onnx.load(str(tmp))
        _drop_onnx_stack_traces(proto)
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta)
        onnx.save(proto, str(tmp))

    atomic_write(path, write)


def _drop_onnx_stack_traces(proto) -> None:
    """Remove the exporter's per-node source stack traces: they hold this checkout's absolute
    paths, so the same model would be other bytes from a clone elsewhere."""
    for node in [*proto.graph.node, *(n for function in proto.functions for n in function.node)]:
        kept = [prop for prop in node.metadata_props if prop.key != ONNX_STACK_TRACE]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)


def read_onnx_meta(path: Path) -> dict:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props.get(META_KEY, "{}"))


def load_onnx(path: Path) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: torch.from_numpy(session.run(None, {name: images.contiguous().numpy()})[0])


def export_pt2(model: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    program = torch.export.export(model.eval(), (example,), dynamic_shapes={"x": {0: _batch_dim()}})
    for node in program.graph.nodes:
        node.meta.pop("stack_trace", None)  # absolute source paths: the bytes would depend on the checkout
    atomic_write(path, lambda tmp: torch.export.save(program, str(tmp), extra_files={META_KEY: json.dumps(meta)}))


def read_pt2_meta(path: Path) -> dict:
    extra = {META_KEY: ""}
    torch.export.load(str(path), extra_files=extra)
    return json.loads(extra[META_KEY] or "{}")


def load_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(images)

    return run


def export_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    """Traced: the architecture has no data-dependent control flow once the input size is fixed."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # asked for by name; the README says it is deprecated
        # The only branches the tracer sees compare spatial sizes (residual crops), fixed with the input size.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
        atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp), _extra_files={META_KEY: json.dumps(meta)}))


def read_torchscript_meta(path: Path) -> dict:
    extra = {META_KEY: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[META_KEY] or "{}")


def load_torchscript(path: Path) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(path), map_location="cpu").eval()

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return scripted(images)

    return run


@dataclass(frozen=True)
class ExportFormat:
    suffix: str
    write: Callable[[torch.nn.Module, torch.Tensor, Path, dict], None]
    load: Callable[[Path], Runner]
    read_meta: Callable[[Path], dict]


EXPORTS = {
    "onnx": ExportFormat(".onnx", export_onnx, load_onnx, read_onnx_meta),
    "pt2": ExportFormat(".pt2", export_pt2, load_pt2, read_pt2_meta),
    "torchscript": ExportFormat(".torchscript.pt", export_torchscript, load_torchscript, read_torchscript_meta),
}


def format_of(path: Path) -> ExportFormat | None:
    """The export format a file name says it holds (None for the project's own .pt files)."""
    name = Path(path).name
    for export in EXPORTS.values():
        if name.endswith(export.suffix):
            return export
    return None


def max_difference(reference: torch.nn.Module, runner: Runner, images: torch.Tensor) -> float:
    with torch.inference_mode():
        expected = reference.eval()(images)
    return float((runner(images) - expected).abs().max())


TOLERANCE = 1e-4


def export_checked(model: torch.nn.Module, kind: str, folder: Path, meta: dict, example: torch.Tensor,
                   inputs: torch.Tensor) -> tuple[Path, Runner, float]:
    """Write `model` as `kind` into `folder`, load it back and compare it with the eager
    model on `inputs`; a difference above 1e-4 is an error naming the file."""
    export = EXPORTS[kind]
    path = Path(folder) / f"fused{export.suffix}"
    export.write(model, example, path, meta)
    runner = export.load(path)
    difference = max_difference(model, runner, inputs)
    if difference > TOLERANCE:
        raise UserError(f"{path}: export differs from PyTorch by {difference:.2e} (> {TOLERANCE})")
    return path, runner, difference
