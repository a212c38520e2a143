"""`fuse` stage: fold Conv+BatchNorm, check the fused model against the unfused one on the
test split, time both on the CPU, save models/fused.pt."""
import dataclasses

import torch

from pipeline.artifacts import load_model, save_model
from pipeline.data import load_prepared
from pipeline.fileio import write_json
from pipeline.fusion import fuse_model, latency_ms
from pipeline.params import Params
from pipeline.runtime import configure
from pipeline.tracking import StageRun
from pipeline.training import predict_logits, to_inputs
from stages.outputs import FUSED, METRICS, MODEL, PREPARED


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
        latency = {}
        for batch in (1, 256):
            example = to_inputs(data.test.images[:batch].repeat(batch // len(data.test.images[:batch]) + 1, 1, 1, 1)[:batch])
            latency[f"unfused_batch{batch}_ms"] = latency_ms(model, example, params.fuse.latency_repeats)
            latency[f"fused_batch{batch}_ms"] = latency_ms(fused, example, params.fuse.latency_repeats)
            latency[f"speedup_batch{batch}"] = latency[f"unfused_batch{batch}_ms"] / latency[f"fused_batch{batch}_ms"]
        summary["latency"] = latency
        save_model(FUSED, fused, dataclasses.replace(info, fused=True))
        write_json(METRICS / "fuse.json", summary)
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracking.log_metrics(latency)
        tracking.log_model(fused, "fused_model", data.test.images[:2].float().div(255).numpy(),
                           registered_name=params.mlflow.registered_model)
        print(f"fuse: folded {report.folded} conv+norm pairs, left {report.left or 'none'}; max |logit diff| "
              f"{summary['max_abs_logit_diff']:.2e}, argmax agreement {summary['argmax_agreement']:.4f}; "
              f"batch 256: {latency['unfused_batch256_ms']:.2f} -> {latency['fused_batch256_ms']:.2f} ms")
