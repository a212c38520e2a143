"""`train` stage: train search/best.yaml for train.epochs and save models/model.pt."""
from pipeline.data.prepare import load_prepared
from pipeline.deploy.artifacts import ModelInfo, save_model
from pipeline.errors import CandidateFailure, UserError
from pipeline.fileio import write_csv, write_json
from pipeline.genome.files import load_best_yaml
from pipeline.genome.genome import active_genes, genome_seed
from pipeline.params import Params
from pipeline.runtime import configure, resolve_device
from pipeline.tracking.plots import training_curve_plot
from pipeline.tracking.run import StageRun
from pipeline.train.fit import fit
from stages.outputs import BEST, METRICS, MODEL, PLOTS, PREPARED


def run(params: Params) -> None:
    device = resolve_device(params.runtime.device)
    configure(device, params.runtime.threads)
    genome = load_best_yaml(BEST)
    with StageRun("train", params) as tracking:
        data = load_prepared(PREPARED)
        tracking.log_params(active_genes(genome))
        seed = genome_seed(params.seed, genome, params.train.epochs)
        try:
            model, result = fit(genome, data, params.train.epochs, seed, device, bf16=params.runtime.bf16,
                                on_epoch=lambda r: print(f"train: epoch {r.epoch}/{params.train.epochs} "
                                                         f"loss {r.train_loss:.4f} val {r.val_accuracy:.4f}", flush=True))
        except CandidateFailure as failure:
            raise UserError(f"{BEST}: this genome cannot be trained ({failure})") from None
        info = ModelInfo(genome, data.class_names, list(data.input_shape), data.mean, data.std, fused=False)
        save_model(MODEL, model.cpu(), info)
        curve = [vars(r) for r in result.epochs]
        write_csv(PLOTS / "train_curve.csv", ["epoch", "train_loss", "val_loss", "val_accuracy"],
                  [[r["epoch"], f"{r['train_loss']:.6f}", f"{r['val_loss']:.6f}", f"{r['val_accuracy']:.6f}"] for r in curve])
        summary = {"val_accuracy": result.val_accuracy, "val_loss": result.val_loss, "params": result.params,
                   "epochs": params.train.epochs, "seconds": round(result.seconds, 3)}
        write_json(METRICS / "train.json", summary)
        tracking.log_curve(curve)
        tracking.log_artifact(training_curve_plot(curve, PLOTS / "train_curve.png"), "plots")
        tracking.log_metrics(summary)
        tracking.log_model(model.cpu().eval(), "model", data.val.images[:2].float().div(255).numpy())
        print(f"train: val accuracy {result.val_accuracy:.4f}, {result.params} parameters, "
              f"{result.seconds:.1f}s; wrote {MODEL}")
