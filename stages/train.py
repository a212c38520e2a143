"""`train` stage: train search/best.yaml for train.epochs (a number, or `auto`: what the
pipeline's budget left after the search pays for), keeping the last or the best epoch's
weights, refit on train + validation if asked, and save models/model.pt."""
import time

from pipeline.data.prepare import load_prepared
from pipeline.deploy.artifacts import ModelInfo, save_model
from pipeline.errors import CandidateFailure, UserError
from pipeline.fileio import load_json, write_csv, write_json
from pipeline.genome.files import load_best_yaml
from pipeline.genome.genome import active_genes, genome_seed
from pipeline.params import Params
from pipeline.runtime import configure, resolve_device
from pipeline.tracking.plots import training_curve_plot
from pipeline.tracking.run import StageRun
from pipeline.train import budget
from pipeline.train.final import EpochProgress, train_final
from stages.outputs import BEST, BUDGET, METRICS, MODEL, PLOTS, PREPARED, TIMINGS


def planned_epochs(params: Params, genome: dict, data, tracking) -> int:
    """`train.epochs`, or with `auto` the epochs the budget left by the search pays for."""
    if params.train.epochs != "auto":
        return params.train.epochs
    report = budget.BudgetReport(**load_json(BUDGET, "run the search stage first (dvc repro search)"))
    plan = budget.final_epochs(report, budget.final_epoch_cost(genome, data, params.train.refit))
    print(f"train: budget {report.total:g} {report.unit.replace('_', ' ')}: {plan.describe(report.unit)}"
          + (" (selection run + refit)" if params.train.refit else ""), flush=True)
    tracking.log_metrics({"budget_left": plan.left, "budget_epoch_cost": plan.epoch_cost, "budget_epochs": plan.epochs})
    return plan.epochs


def run(params: Params) -> None:
    device = resolve_device(params.runtime.device)
    configure(device, params.runtime.threads)
    genome = load_best_yaml(BEST)
    with StageRun("train", params) as tracking:
        data = load_prepared(PREPARED)
        tracking.log_dataset(data, params.data, ("train", "validation"))
        tracking.log_params(active_genes(genome))
        settings = params.train
        epochs = planned_epochs(params, genome, data, tracking)
        seed = genome_seed(params.seed, genome, epochs)
        progress = EpochProgress(epochs)
        started = time.perf_counter()
        try:
            model, final = train_final(genome, data, epochs, seed, device, select=settings.select,
                                       refit=settings.refit, bf16=params.runtime.bf16, on_epoch=progress,
                                       on_refit_epoch=lambda record: None, side_by_side=True)
        except CandidateFailure as failure:
            raise UserError(f"{BEST}: this genome cannot be trained ({failure})") from None
        finally:
            progress.close()
        seconds = time.perf_counter() - started  # selecting run and refit (side by side on the CPU)
        result = final.selection
        info = ModelInfo(genome, data.class_names, list(data.input_shape), data.mean, data.std, fused=False)
        save_model(MODEL, model.cpu(), info)
        curve = [vars(r) for r in result.epochs]
        write_csv(PLOTS / "train_curve.csv", ["epoch", "train_loss", "val_loss", "val_accuracy"],
                  [[r["epoch"], f"{r['train_loss']:.6f}", f"{r['val_loss']:.6f}", f"{r['val_accuracy']:.6f}"]
                   for r in curve])
        summary = {"val_accuracy": result.val_accuracy, "val_loss": result.val_loss, "params": result.params,
                   "epochs": epochs, "chosen_epoch": result.chosen_epoch,
                   "refit_epochs": final.epochs if final.refit else 0, "seconds": round(seconds, 3)}
        timings = {"seconds": summary.pop("seconds")}  # wall clock: not a DVC metric (stages/outputs.py)
        write_json(METRICS / "train.json", summary)
        write_json(TIMINGS / "train.json", timings)
        tracking.log_curve(curve)
        tracking.log_artifact(training_curve_plot(curve, PLOTS / "train_curve.png"), "plots")
        tracking.log_metrics({**summary, **timings})
        tracking.log_headline({"params": result.params})
        tracking.log_model(model.cpu().eval(), "model", data.val.images[:2].float().div(255).numpy())
        refit = f", refit on train + validation for {final.epochs} epochs" if final.refit else ""
        print(f"train: val accuracy {result.val_accuracy:.4f} at epoch {result.chosen_epoch} ({settings.select})"
              f"{refit}, {result.params} parameters, {seconds:.1f}s; wrote {MODEL}")
