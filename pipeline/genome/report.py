"""A finished CNN search as the tables a user reads: history, hall of fame, Pareto front
and the summary that becomes metrics/search.json (genomes shown by their active genes)."""
from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

from pipeline.errors import UserError
from pipeline.genome.files import genome_from_mapping
from pipeline.genome.genome import active_genes, genome_key

HISTORY_COLUMNS = ["generation", "rung", "genome_key", "epochs", "val_accuracy", "val_loss", "params", "flops",
                   "cost", "failure", "detail", "genome", "seconds"]


def history_rows(outcome) -> list[list]:
    """One row per evaluation; `cost` in reference seconds (what the budget counts)."""
    return [[generation, rung, r.key_hash, r.budget, f"{r.score:.6f}", f"{r.loss:.6f}", r.metrics.get("params", 0),
             r.metrics.get("flops", 0), f"{r.spent:.6f}", r.failure, r.detail, json.dumps(active_genes(r.genome)),
             f"{r.seconds:.3f}"]
            for generation, rung, r in outcome.history]


def hall_of_fame(outcome) -> list[dict]:
    return [{"genome": active_genes(s.genome), "val_accuracy": s.result.score, "val_loss": s.result.loss,
             "epochs": s.result.budget, "params": s.result.metrics.get("params", 0)} for s in outcome.hall_of_fame]


def pareto_table(outcome, objectives) -> tuple[list[str], list[list]]:
    header = ["genome_key", *objectives, "val_accuracy", "epochs", "genome"]
    rows = [[s.result.key_hash, *[f"{v:.6g}" for v in s.objectives(objectives)], f"{s.result.score:.6f}",
             s.result.budget, json.dumps(active_genes(s.genome))] for s in outcome.pareto]
    return header, rows


def best_fitness(outcome) -> dict:
    best = outcome.best_result
    return {"val_accuracy": round(best.score, 6), "val_loss": round(best.loss, 6), "epochs": best.budget}


def summary(outcome) -> dict:
    """metrics/search.json: the best candidate, what was spent, and why the search stopped."""
    best = outcome.best_result
    failures = Counter(r.failure for _, _, r in outcome.history if r.failure)
    return {
        "best_val_accuracy": best.score,
        "best_val_loss": best.loss,
        "best_params": best.metrics.get("params", 0),
        "best_epochs": best.budget,
        "evaluations": len(outcome.history),
        "trained": outcome.trained,
        "reused": outcome.reused,
        "memo_hits": outcome.memo_hits,
        "epochs_trained": round(outcome.epochs_spent, 3),
        "cost": round(outcome.cost_spent, 3),
        "failures": sum(failures.values()),
        "failures_by_reason": dict(sorted(failures.items())),
        "pareto_size": len(outcome.pareto),
        "stop_reason": outcome.stop_reason,
        "seconds": round(sum(g.seconds for g in outcome.generations), 3),
    }


def warm_start_used(outcome, genomes: list[dict]) -> int:
    """How many of `genomes` (as the search proposed them) were evaluated in generation 0."""
    first = {genome_key(r.genome) for generation, _, r in outcome.history if generation == 0}
    return sum(genome_key(g) in first for g in genomes)


def best_genomes(path: Path, count: int) -> list[dict]:
    """The `count` best distinct genomes of an earlier search's history.csv or
    hall_of_fame.json (failed candidates left out), best first: a warm start."""
    path = Path(path)
    try:
        if path.suffix == ".csv":
            with open(path, newline="") as handle:
                rows = [(float(r["val_accuracy"]), json.loads(r["genome"])) for r in csv.DictReader(handle)
                        if not r.get("failure")]
        else:
            rows = [(float(e["val_accuracy"]), e["genome"]) for e in json.loads(path.read_text())]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"search.warm_start: {path}: not a history.csv or hall_of_fame.json ({err})") from None
    chosen, seen = [], set()
    for score, raw in sorted(rows, key=lambda row: -row[0] if math.isfinite(row[0]) else math.inf):
        genome = genome_from_mapping(raw, f"search.warm_start: {path}")
        if genome_key(genome) not in seen:
            seen.add(genome_key(genome))
            chosen.append(genome)
    return chosen[:count]
