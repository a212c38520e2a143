"""`search` stage: run the configured search on data/prepared; write search/ and metrics."""
import json
import math
import re
import tempfile
from collections import Counter
from pathlib import Path

from pipeline.data.prepare import load_prepared
from pipeline.errors import UserError
from pipeline.fileio import write_csv, write_json, write_text
from pipeline.genome import report
from pipeline.genome.files import best_yaml_text
from pipeline.genome.genome import active_genes
from pipeline.genome.portfolio import portfolio
from pipeline.genome.problem import CNNProblem
from pipeline.params import Params
from pipeline.runtime import configure, resolve_device
from pipeline.search import run_search
from pipeline.train import budget
from pipeline.tracking.plots import fitness_plot, pareto_plot
from pipeline.tracking.run import StageRun, search_artifact
from stages.outputs import BEST, BUDGET, HALL_OF_FAME, HISTORY, METRICS, PARETO, PLOTS, PREPARED, RECORD, TIMINGS, store_dir


def warm_start_genomes(params: Params) -> list[dict]:
    """The best genomes of the search `search.warm_start` names (a file or an MLflow run),
    enough to fill half of the first generation."""
    source, count = params.search.warm_start, math.ceil(params.search.population / 2)
    if not source:
        return []
    if Path(source).is_file():
        return report.best_genomes(Path(source), count)
    if re.fullmatch(r"[0-9a-f]{32}", source):
        with tempfile.TemporaryDirectory() as folder:
            return report.best_genomes(search_artifact(params, source, Path(folder)), count)
    raise UserError(f"search.warm_start: '{source}' is neither a file nor an MLflow run id")


def run(params: Params) -> None:
    device = resolve_device(params.runtime.device)
    configure(device, params.runtime.threads)
    with StageRun("search", params) as tracking:
        settings = budget.search_settings(params.search, params.budget)
        problem = CNNProblem(params.space, load_prepared(PREPARED), str(device), params.runtime.bf16, settings.max_params,
                             measure_latency="latency" in settings.objectives,
                             time_limit=settings.candidate_timeout or None)
        tracking.log_dataset(problem.data, params.data, ("train", "validation"))
        counter = Counter()
        recipes = portfolio(params.space, problem.data.input_shape) if settings.portfolio else []
        warm = warm_start_genomes(params)
        if warm:
            print(f"search: warm start: {len(warm)} genomes from {params.search.warm_start}, proposed first"
                  + (f", then {len(recipes)} portfolio recipes" if recipes else ""), flush=True)

        def on_result(generation, rung, result, reused):
            counter[generation] += 1
            tracking.log_individual(generation, counter[generation], active_genes(result.genome), result, rung, reused)

        def on_generation(record):
            tracking.log_metrics({"best_so_far_val_accuracy": record.best,
                                  "incumbent_val_accuracy": record.incumbent,
                                  "population_best_val_accuracy": record.population_best,
                                  "population_mean_val_accuracy": record.mean}, step=record.generation)

        outcome = run_search(problem, settings, params.seed, store_root=store_dir(), record_path=RECORD,
                             warm_start=warm + recipes, on_result=on_result, on_generation=on_generation, progress=True)
        if warm:
            used = report.warm_start_used(outcome, [problem.repair(problem.space.project(g)) for g in warm])
            print(f"search: warm start: {used} of {len(warm)} genomes evaluated in the first generation", flush=True)
            tracking.log_metrics({"warm_start_genomes": len(warm), "warm_start_used": used})
        spent = budget.report_of(outcome, params.budget)
        write_json(BUDGET, spent.as_dict())
        write_text(BEST, best_yaml_text(outcome.best_genome, report.best_fitness(outcome)))
        write_csv(HISTORY, report.HISTORY_COLUMNS, report.history_rows(outcome))
        write_text(HALL_OF_FAME, json.dumps(report.hall_of_fame(outcome), indent=2) + "\n")
        write_csv(PARETO, *report.pareto_table(outcome, settings.objectives))
        write_csv(PLOTS / "search_generations.csv", ["generation", "best_so_far", "incumbent", "population_best",
                                                              "population_mean"],
                  [[g.generation, f"{g.best:.6f}", f"{g.incumbent:.6f}", f"{g.population_best:.6f}", f"{g.mean:.6f}"]
                   for g in outcome.generations])
        pictures = [fitness_plot(outcome.generations, PLOTS / "search_fitness.png")]
        if outcome.pareto:
            pictures.append(pareto_plot(outcome.pareto, settings.objectives, PLOTS / "pareto.png"))
        summary = report.summary(outcome)
        timings = {"seconds": summary.pop("seconds"),  # wall clock: not DVC metrics (stages/outputs.py)
                   "seconds_per_reference_second": round(budget.machine_speed(outcome), 6)}
        write_json(METRICS / "search.json", summary)
        write_json(TIMINGS / "search.json", timings)
        tracking.log_params({f"best.{k}": v for k, v in active_genes(outcome.best_genome).items()})
        tracking.log_metrics({k: v for k, v in {**summary, **timings}.items() if isinstance(v, (int, float))})
        tracking.log_headline({"best_val_accuracy": summary["best_val_accuracy"], "search_trainings": outcome.trained,
                               "search_seconds": timings["seconds"]})
        tracking.log_metrics({"budget_search_spent": spent.search_spent, "budget_left": spent.left})
        tracking.set_tags({"stop_reason": outcome.stop_reason})
        for path in (BEST, HISTORY, HALL_OF_FAME, PARETO, BUDGET):
            tracking.log_artifact(path)
        for picture in pictures:
            tracking.log_artifact(picture, "plots")
        print(f"search: {settings.algorithm} stopped ({outcome.stop_reason}); best val accuracy "
              f"{summary['best_val_accuracy']:.4f} at {summary['best_epochs']} epochs after {summary['evaluations']} "
              f"evaluations ({outcome.trained} trained, {outcome.reused} from the store, {outcome.memo_hits} memo hits, "
              f"{summary['failures']} failures); wrote {BEST}")
        if params.budget.total:
            unit = params.budget.unit.replace("_", " ")
            print(f"search: budget {spent.total:g} {unit}: the search spent {spent.search_spent:.1f} "
                  f"(allowance {params.budget.search_allowance:g}), {spent.left:.1f} left for the final training")
