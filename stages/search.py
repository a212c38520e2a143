"""`search` stage: evolve genomes on data/prepared and write search/ and the search metrics."""
import json
from collections import Counter

from pipeline.backends import make_backend
from pipeline.candidate import CandidateContext
from pipeline.data import load_prepared
from pipeline.fileio import write_csv, write_json, write_text
from pipeline.genome import active_genes, best_yaml_text
from pipeline.params import Params
from pipeline.runtime import configure, resolve_device
from pipeline.plots import fitness_plot
from pipeline.search import run_ga
from pipeline.tracking import StageRun
from stages.outputs import BEST, HALL_OF_FAME, HISTORY, METRICS, PLOTS, PREPARED

HISTORY_COLUMNS = ["generation", "genome_key", "val_accuracy", "val_loss", "params", "epochs", "failure", "detail", "genome", "seconds"]


def history_row(generation, result):
    return [
        generation, result.key_hash, f"{result.val_accuracy:.6f}", f"{result.val_loss:.6f}", result.params,
        result.epochs, result.failure, result.detail, json.dumps(active_genes(result.genome)), f"{result.seconds:.3f}",
    ]


def run(params: Params) -> None:
    device = resolve_device(params.runtime.device)
    configure(device, params.runtime.threads)
    with StageRun("search", params) as tracking:
        data = load_prepared(PREPARED)
        context = CandidateContext(data, str(device), params.runtime.bf16, params.search.max_params)
        backend = make_backend(params.search.backend, context, params.search.workers)
        counter = Counter()

        def on_result(generation, result):
            counter[generation] += 1
            tracking.log_individual(generation, counter[generation], active_genes(result.genome), result)

        def on_generation(record):
            print(f"search: generation {record.generation}/{params.search.generations} best {record.best:.4f} "
                  f"mean {record.mean:.4f} trained {record.evaluated} failed {record.failed} ({record.seconds:.1f}s)",
                  flush=True)
            tracking.log_metrics({"best_val_accuracy": record.best, "mean_val_accuracy": record.mean}, step=record.generation)

        try:
            outcome = run_ga(params.space, params.search, params.seed, data.input_shape, backend.map, on_result, on_generation)
        finally:
            backend.close()
        best = outcome.best_result
        fitness = {"val_accuracy": round(best.val_accuracy, 6), "val_loss": round(best.val_loss, 6), "epochs": best.epochs}
        write_text(BEST, best_yaml_text(outcome.best_genome, fitness))
        write_csv(HISTORY, HISTORY_COLUMNS, [history_row(g, r) for g, r in outcome.history])
        write_text(HALL_OF_FAME, json.dumps(
            [{"genome": active_genes(r.genome), "val_accuracy": r.val_accuracy, "val_loss": r.val_loss} for r in outcome.hall_of_fame],
            indent=2) + "\n")
        write_csv(PLOTS / "search_generations.csv", ["generation", "best", "mean"],
                  [[g.generation, f"{g.best:.6f}", f"{g.mean:.6f}"] for g in outcome.generations])
        failures = Counter(r.failure for _, r in outcome.history if r.failure)
        summary = {
            "best_val_accuracy": best.val_accuracy,
            "best_val_loss": best.val_loss,
            "best_params": best.params,
            "evaluations": len(outcome.history),
            "memo_hits": outcome.memo_hits,
            "failures": sum(failures.values()),
            "failures_by_reason": dict(sorted(failures.items())),
            "epochs_trained": sum(r.epochs for _, r in outcome.history),
            "stop_reason": outcome.stop_reason,
            "seconds": round(sum(g.seconds for g in outcome.generations), 3),
        }
        write_json(METRICS / "search.json", summary)
        tracking.log_params({f"best.{k}": v for k, v in active_genes(outcome.best_genome).items()})
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        picture = fitness_plot(outcome.generations, PLOTS / "search_fitness.png")
        for path in (BEST, HISTORY, HALL_OF_FAME):
            tracking.log_artifact(path)
        tracking.log_artifact(picture, "plots")
        print(f"search: best val accuracy {best.val_accuracy:.4f} after {len(outcome.history)} trainings "
              f"({outcome.memo_hits} memo hits, {summary['failures']} failures); wrote {BEST}")
