"""`search` stage: run the configured search on data/prepared; write search/ and metrics."""
import json
from collections import Counter

from pipeline.data.prepare import load_prepared
from pipeline.fileio import write_csv, write_json, write_text
from pipeline.genome import report
from pipeline.genome.files import best_yaml_text
from pipeline.genome.genome import active_genes
from pipeline.genome.problem import CNNProblem
from pipeline.params import Params, raw_hash
from pipeline.runtime import configure, resolve_device
from pipeline.search import run_search
from pipeline.tracking.plots import fitness_plot, pareto_plot
from pipeline.tracking.run import StageRun
from stages.outputs import BEST, CHECKPOINT, HALL_OF_FAME, HISTORY, METRICS, PARETO, PLOTS, PREPARED


def checkpoint_hash(params: Params) -> str:
    """What a checkpoint depends on: data, space, seed and the search settings that change
    results (not the backend or worker count, which do not)."""
    search = {k: v for k, v in (params.raw.get("search") or {}).items() if k not in ("backend", "workers", "ray_address")}
    return params.section_hash("seed", "data", "space") + ":" + raw_hash({"search": search})


def run(params: Params) -> None:
    device = resolve_device(params.runtime.device)
    configure(device, params.runtime.threads)
    with StageRun("search", params) as tracking:
        settings = params.search
        problem = CNNProblem(params.space, load_prepared(PREPARED), str(device), params.runtime.bf16, settings.max_params,
                             measure_latency="latency" in settings.objectives,
                             time_limit=settings.candidate_timeout or None)
        counter = Counter()

        def on_result(generation, rung, result):
            counter[generation] += 1
            tracking.log_individual(generation, counter[generation], active_genes(result.genome), result, rung)

        def on_generation(record):
            tracking.log_metrics({"generation_best_val_accuracy": record.best, "generation_mean_val_accuracy": record.mean},
                                 step=record.generation)

        outcome = run_search(problem, settings, params.seed, params_hash=checkpoint_hash(params), checkpoint_path=CHECKPOINT,
                             on_result=on_result, on_generation=on_generation, progress=True)
        write_text(BEST, best_yaml_text(outcome.best_genome, report.best_fitness(outcome)))
        write_csv(HISTORY, report.HISTORY_COLUMNS, report.history_rows(outcome))
        write_text(HALL_OF_FAME, json.dumps(report.hall_of_fame(outcome), indent=2) + "\n")
        write_csv(PARETO, *report.pareto_table(outcome, settings.objectives))
        write_csv(PLOTS / "search_generations.csv", ["generation", "best", "mean"],
                  [[g.generation, f"{g.best:.6f}", f"{g.mean:.6f}"] for g in outcome.generations])
        pictures = [fitness_plot(outcome.generations, PLOTS / "search_fitness.png")]
        if outcome.pareto:
            pictures.append(pareto_plot(outcome.pareto, settings.objectives, PLOTS / "pareto.png"))
        summary = report.summary(outcome)
        write_json(METRICS / "search.json", summary)
        tracking.log_params({f"best.{k}": v for k, v in active_genes(outcome.best_genome).items()})
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        tracking.set_tags({"stop_reason": outcome.stop_reason})
        for path in (BEST, HISTORY, HALL_OF_FAME, PARETO):
            tracking.log_artifact(path)
        for picture in pictures:
            tracking.log_artifact(picture, "plots")
        print(f"search: {settings.algorithm} stopped ({outcome.stop_reason}); best val accuracy "
              f"{summary['best_val_accuracy']:.4f} at {summary['best_epochs']} epochs after {summary['evaluations']} "
              f"trainings ({outcome.memo_hits} memo hits, {summary['failures']} failures); wrote {BEST}")
