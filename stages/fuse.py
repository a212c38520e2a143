"""`fuse` stage: fold Conv+BatchNorm, check the fused model against the unfused one on the
test split, write the exports `fuse.export` lists into models/exports/ (each checked
against PyTorch), save models/fused.pt, and time everything on the CPU in this one process
(latencies go to metrics/timings/fuse.json and the MLflow run, not to the DVC metrics)."""
import dataclasses

import torch

from pipeline.data.prepare import load_prepared
from pipeline.deploy.artifacts import load_model, save_model
from pipeline.deploy.export import export_checked
from pipeline.deploy.fusion import fuse_model
from pipeline.fileio import write_json
from pipeline.nn.inference import predict_logits, to_inputs
from pipeline.nn.measure import latency_table
from pipeline.params import Params
from pipeline.runtime import configure
from pipeline.tracking.run import StageRun
from stages.outputs import EXPORTS_DIR, FUSED, METRICS, MODEL, PREPARED, TIMINGS


def batch_of(images: torch.Tensor, size: int) -> torch.Tensor:
    repeats = -(-size // len(images))
    return to_inputs(images.repeat(repeats, 1, 1, 1)[:size])


def describe_norms(left: dict[str, int]) -> str:
    """{'GroupNorm': 6} -> '6 GroupNorm'; nothing left -> 'none'."""
    return ", ".join(f"{count} {kind}" for kind, count in sorted(left.items())) or "none"


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
        meta = {"class_names": info.class_names, "input_shape": info.input_shape, "genome": info.genome}
        exported = []
        for kind in params.fuse.export:
            path, runners[kind], summary[f"{kind}_max_abs_diff"] = export_checked(
                fused, kind, EXPORTS_DIR, meta, batch_of(data.test.images, 2), to_inputs(data.test.images[:512]))
            exported.append(path)
        examples = {batch: batch_of(data.test.images, batch) for batch in (1, 256)}
        latency = latency_table(runners, examples, params.fuse.latency_repeats)
        save_model(FUSED, fused, dataclasses.replace(info, fused=True))
        write_json(METRICS / "fuse.json", summary)
        write_json(TIMINGS / "fuse.json", {"latency": latency})
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracking.log_metrics(latency)
        tracking.set_tags({"norms_left": describe_norms(report.left)})
        for path in exported:
            tracking.log_artifact(path, "exports")
        print(f"fuse: folded {report.folded} conv+norm pairs, left {describe_norms(report.left)}; max |logit diff| "
              f"{summary['max_abs_logit_diff']:.2e}, argmax agreement {summary['argmax_agreement']:.4f}; "
              f"exported {', '.join(str(p) for p in exported) or 'nothing'}")
        for batch in examples:
            print(f"fuse: batch {batch} latency (ms): " + ", ".join(
                f"{name} {latency[f'{name}_batch{batch}_ms']:.3f}" for name in runners))
