"""`search` stage: run the configured search on data/prepared; write search/ and metrics."""
import json
import sys
from collections import Counter

from pipeline.backends import make_backend
from pipeline.candidate import CandidateContext
from pipeline.data import load_prepared
from pipeline.fileio import write_csv, write_json, write_text
from pipeline.genome import active_genes, best_yaml_text
from pipeline.params import Params
from pipeline.plots import fitness_plot, pareto_plot
from pipeline.progress import GenerationProgress
from pipeline.runtime import configure, resolve_device
from pipeline.search import run_search
from pipeline.strategies import make_strategy
from pipeline.tracking import StageRun
from stages.outputs import BEST, CHECKPOINT, HALL_OF_FAME, HISTORY, METRICS, PARETO, PLOTS, PREPARED

HISTORY_COLUMNS = ["generation", "rung", "genome_key", "epochs", "val_accuracy", "val_loss", "params", "flops",
                   "failure", "detail", "genome", "seconds"]


def history_row(generation, rung, result):
    return [
        generation, rung, result.key_hash, result.epochs, f"{result.val_accuracy:.6f}", f"{result.val_loss:.6f}",
        result.params, result.flops, result.failure, result.detail, json.dumps(active_genes(result.genome)),
        f"{result.seconds:.3f}",
    ]


def checkpoint_hash(params: Params) -> str:
    """What a checkpoint depends on: data, space, seed and the search settings that change
    results (not the backend or worker count, which do not)."""
    search = {k: v for k, v in (params.raw.get("search") or {}).items() if k not in ("backend", "workers", "ray_address")}
    return params.section_hash("seed", "data", "space") + ":" + Params(raw={"search": search}).section_hash("search")


def run(params: Params) -> None:
    device = resolve_device(params.runtime.device)
    configure(device, params.runtime.threads)
    with StageRun("search", params) as tracking:
        data = load_prepared(PREPARED)
        strategy = make_strategy(params.space, params.search, data.input_shape, params.seed)
        context = CandidateContext(data, str(device), params.runtime.bf16, params.search.max_params,
                                   measure_latency="latency" in params.search.objectives,
                                   time_limit=params.search.candidate_timeout or None)
        backend = make_backend(params.search, context)
        progress = GenerationProgress(params.search.population, strategy.last_generation(), sys.stderr)
        counter = Counter()

        def on_result(generation, rung, result):
            counter[generation] += 1
            progress.candidate(result)
            tracking.log_individual(generation, counter[generation], active_genes(result.genome), result, rung)

        def on_generation(record):
            progress.generation(record)
            tracking.log_metrics({"generation_best_val_accuracy": record.best, "generation_mean_val_accuracy": record.mean},
                                step=record.generation)

        try:
            outcome = run_search(strategy, params.search, params.seed, backend.map, params_hash=checkpoint_hash(params),
                                 checkpoint_path=CHECKPOINT, on_result=on_result, on_generation=on_generation)
        finally:
            backend.close()
        best = outcome.best_result
        fitness = {"val_accuracy": round(best.val_accuracy, 6), "val_loss": round(best.val_loss, 6), "epochs": best.epochs}
        write_text(BEST, best_yaml_text(outcome.best_genome, fitness))
        write_csv(HISTORY, HISTORY_COLUMNS, [history_row(g, r, res) for g, r, res in outcome.history])
        fame = [{"genome": active_genes(s.genome), "val_accuracy": s.result.val_accuracy, "val_loss": s.result.val_loss,
                 "epochs": s.result.epochs, "params": s.result.params} for s in outcome.hall_of_fame]
        write_text(HALL_OF_FAME, json.dumps(fame, indent=2) + "\n")
        objectives = params.search.objectives
        write_csv(PARETO, ["genome_key", *objectives, "val_accuracy", "epochs", "genome"],
                  [[s.result.key_hash, *[f"{v:.6g}" for v in s.objectives(objectives)], f"{s.result.val_accuracy:.6f}",
                    s.result.epochs, json.dumps(active_genes(s.genome))] for s in outcome.pareto])
        write_csv(PLOTS / "search_generations.csv", ["generation", "best", "mean"],
                  [[g.generation, f"{g.best:.6f}", f"{g.mean:.6f}"] for g in outcome.generations])
        pictures = [fitness_plot(outcome.generations, PLOTS / "search_fitness.png")]
        if outcome.pareto:
            pictures.append(pareto_plot(outcome.pareto, objectives, PLOTS / "pareto.png"))
        failures = Counter(r.failure for _, _, r in outcome.history if r.failure)
        summary = {
            "best_val_accuracy": best.val_accuracy,
            "best_val_loss": best.val_loss,
            "best_params": best.params,
            "best_epochs": best.epochs,
            "evaluations": len(outcome.history),
            "memo_hits": outcome.memo_hits,
            "epochs_trained": sum(r.epochs for _, _, r in outcome.history),
            "failures": sum(failures.values()),
            "failures_by_reason": dict(sorted(failures.items())),
            "pareto_size": len(outcome.pareto),
            "stop_reason": outcome.stop_reason,
            "seconds": round(sum(g.seconds for g in outcome.generations), 3),
        }
        write_json(METRICS / "search.json", summary)
        tracking.log_params({f"best.{k}": v for k, v in active_genes(outcome.best_genome).items()})
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracking.set_tags({"stop_reason": outcome.stop_reason})
        for path in (BEST, HISTORY, HALL_OF_FAME, PARETO):
            tracking.log_artifact(path)
        for picture in pictures:
            tracking.log_artifact(picture, "plots")
        progress.close()
        print(f"search: {params.search.algorithm} stopped ({outcome.stop_reason}); best val accuracy "
              f"{best.val_accuracy:.4f} at {best.epochs} epochs after {len(outcome.history)} trainings "
              f"({outcome.memo_hits} memo hits, {summary['failures']} failures); wrote {BEST}")
