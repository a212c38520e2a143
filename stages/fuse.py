"""`fuse` stage: fold Conv+BatchNorm, check the fused model against the unfused one on the
test split, export TorchScript/ONNX (each checked against PyTorch), time everything on the
CPU in this one process, save models/fused.pt."""
import dataclasses

import torch

from pipeline.data.prepare import load_prepared
from pipeline.deploy.artifacts import load_model, save_model
from pipeline.deploy.export import EXPORT_SUFFIX, EXPORTERS, load_runner, max_difference
from pipeline.deploy.fusion import fuse_model
from pipeline.errors import UserError
from pipeline.fileio import write_json
from pipeline.nn.inference import predict_logits, to_inputs
from pipeline.nn.measure import latency_ms
from pipeline.params import Params
from pipeline.runtime import configure
from pipeline.tracking.run import StageRun
from stages.outputs import FUSED, METRICS, MODEL, MODELS, PREPARED

TOLERANCE = 1e-4


def batch_of(images: torch.Tensor, size: int) -> torch.Tensor:
    repeats = -(-size // len(images))
    return to_inputs(images.repeat(repeats, 1, 1, 1)[:size])


def run(params: Params) -> None:
    device = torch.device("cpu")
    configure(device, params.runtime.threads)
    with StageRun("fuse", params) as tracking:
        model, info = load_model(MODEL)
        data = load_prepared(PREPARED)
        fused, report = fuse_model(model)
        before = predict_logits(model, data.test.images, device)
        after = predict_logits(fused, data.test.images, device)
        summary = {
            "folded_pairs": report.folded,
            "norms_left": report.left,
            "max_abs_logit_diff": float((before - after).abs().max()),
            "argmax_agreement": float((before.argmax(1) == after.argmax(1)).float().mean()),
        }
        runners = {"unfused": model, "fused": fused}
        test_inputs = to_inputs(data.test.images[:512])
        for kind in params.fuse.export:
            path = MODELS / f"fused{EXPORT_SUFFIX[kind]}"
            meta = {"class_names": info.class_names, "input_shape": info.input_shape, "genome": info.genome}
            EXPORTERS[kind](fused, batch_of(data.test.images, 2), path, meta)
            runners[kind] = load_runner(path)
            difference = max_difference(fused, runners[kind], test_inputs)
            summary[f"{kind}_max_abs_diff"] = difference
            if difference > TOLERANCE:
                raise UserError(f"{path}: export differs from PyTorch by {difference:.2e} (> {TOLERANCE})")
        latency = {}
        for batch in (1, 256):
            example = batch_of(data.test.images, batch)
            for name, runner in runners.items():
                latency[f"{name}_batch{batch}_ms"] = latency_ms(runner, example, params.fuse.latency_repeats)
            for name in runners:
                if name != "unfused":
                    latency[f"{name}_speedup_batch{batch}"] = latency[f"unfused_batch{batch}_ms"] / latency[f"{name}_batch{batch}_ms"]
        summary["latency"] = latency
        save_model(FUSED, fused, dataclasses.replace(info, fused=True))
        write_json(METRICS / "fuse.json", summary)
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracking.log_metrics(latency)
        tracking.set_tags({"norms_left": str(report.left or "none")})
        for kind in params.fuse.export:
            tracking.log_artifact(MODELS / f"fused{EXPORT_SUFFIX[kind]}", "exports")
        tracking.log_model(fused, "fused_model", batch_of(data.test.images, 2).numpy(),
                           registered_name=params.mlflow.registered_model)
        print(f"fuse: folded {report.folded} conv+norm pairs, left {report.left or 'none'}; max |logit diff| "
              f"{summary['max_abs_logit_diff']:.2e}, argmax agreement {summary['argmax_agreement']:.4f}")
        for batch in (1, 256):
            print(f"fuse: batch {batch} latency (ms): " + ", ".join(
                f"{name} {latency[f'{name}_batch{batch}_ms']:.3f}" for name in runners))
