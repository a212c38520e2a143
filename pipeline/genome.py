"""Genomes: one architecture plus training recipe, as a plain dict gene -> value.

A genome is sampled from, mutated within and repaired within a `SearchSpace`; DEAP sees it
as a list in `space.names` order (`to_list` / `from_list`). `canonical` resets genes that
have no effect for the rest of the genome (momentum for Adam, ...), so that two genomes that
train identically share one memo key and one seed. `best.yaml` holds only the active genes.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from pipeline.errors import ConfigError, UserError
from pipeline.model import InvalidArchitecture, plan_shapes
from pipeline.space import CONDITIONAL_GENES, GENE_CATALOG, SearchSpace, check_value

Genome = dict


def default_genome() -> Genome:
    return {name: d.default for name, d in GENE_CATALOG.items()}


def canonical(genome: Mapping) -> Genome:
    """The genome with inactive conditional genes reset to their catalog default."""
    out = dict(genome)
    for gene, (parent, active_for) in CONDITIONAL_GENES.items():
        if out[parent] not in active_for:
            out[gene] = GENE_CATALOG[gene].default
    return out


def active_genes(genome: Mapping) -> Genome:
    """Only the genes that influence training, in catalog order (what best.yaml shows)."""
    out = {}
    for name in GENE_CATALOG:
        condition = CONDITIONAL_GENES.get(name)
        if condition and genome[condition[0]] not in condition[1]:
            continue
        out[name] = genome[name]
    return out


def genome_key(genome: Mapping) -> str:
    """A stable identity for memoization: JSON of the canonical genome."""
    return json.dumps(canonical(genome), sort_keys=True)


def genome_seed(run_seed: int, genome: Mapping, budget: int | None = None) -> int:
    """A candidate's training seed from the run seed and the genome (and budget), so that a
    result never depends on evaluation order, worker count or backend."""
    text = f"{run_seed}|{genome_key(genome)}|{budget}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def is_valid(genome: Mapping, input_shape: Sequence[int]) -> bool:
    try:
        plan_shapes(genome, input_shape)
        return True
    except InvalidArchitecture:
        return False


def repair(genome: Mapping, space: SearchSpace, input_shape: Sequence[int]) -> Genome:
    """Make the genome buildable on `input_shape` using only values the space allows:
    fewer stages, then fewer blocks, then the gentlest geometry the space offers."""
    out = canonical(genome)
    if is_valid(out, input_shape):
        return out
    fallbacks = [("padding", "same"), ("stride", 1), ("kernel", 1), ("kernel", 3), ("pooling", "none")]
    for gene in ("stages", "blocks_per_stage"):
        while not is_valid(out, input_shape) and space[gene].contains(out[gene] - 1):
            out[gene] -= 1
    for gene, value in fallbacks:
        if is_valid(out, input_shape):
            break
        if space[gene].contains(value):
            out[gene] = value
            for counter in ("stages", "blocks_per_stage"):
                while not is_valid(out, input_shape) and space[counter].contains(out[counter] - 1):
                    out[counter] -= 1
    return out


def sample_genome(space: SearchSpace, rng: random.Random, input_shape: Sequence[int]) -> Genome:
    genome = {name: gene.sample(rng) for name, gene in space.genes}
    return repair(genome, space, input_shape)


def mutate_genome(
    genome: Mapping, space: SearchSpace, rng: random.Random, indpb: float, input_shape: Sequence[int]
) -> Genome:
    """Each unpinned gene mutates with probability `indpb`; at least one always does, so a
    mutant is never a silent copy."""
    out = dict(genome)
    active = active_genes(genome)
    free = [name for name, gene in space.genes if not gene.pinned and name in active]
    changed = False
    for name in free:
        if rng.random() < indpb:
            out[name] = space[name].mutate(out[name], rng)
            changed = True
    if free and not changed:
        name = rng.choice(free)
        out[name] = space[name].mutate(out[name], rng)
    return repair(out, space, input_shape)


def to_list(genome: Mapping, space: SearchSpace) -> list:
    return [genome[name] for name in space.names]


def from_list(values: Sequence, space: SearchSpace) -> Genome:
    return dict(zip(space.names, values))


def genome_from_mapping(raw: Any, source: str) -> Genome:
    """Validate a user-visible genome (best.yaml); missing genes take their defaults."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping 'genome:' of gene -> value")
    genome = default_genome()
    for name, value in raw.items():
        if name not in GENE_CATALOG:
            raise UserError(f"{source}: genome.{name}: unknown gene; known genes: {', '.join(GENE_CATALOG)}")
        try:
            genome[name] = check_value(f"genome.{name}", GENE_CATALOG[name], value)
        except ConfigError as err:
            raise UserError(f"{source}: {err}") from None
        if GENE_CATALOG[name].kind == "int" and isinstance(genome[name], float):
            genome[name] = int(genome[name])
    return canonical(genome)


def best_yaml_text(genome: Mapping, fitness: Mapping[str, float]) -> str:
    """best.yaml text: the active genes, then the fitness that earned them (informational)."""
    header = (
        "# The best genome the search found. `train` reads `genome:`; edit it and run\n"
        "# `dvc repro train` to try your own. Genes left out take their defaults.\n"
    )
    body = yaml.safe_dump({"genome": active_genes(genome), "fitness": dict(fitness)}, sort_keys=False)
    return header + body


def load_best_yaml(path: Path) -> Genome:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the search stage first (dvc repro search)") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict) or "genome" not in raw:
        raise UserError(f"{path}: expected a top-level 'genome:' mapping")
    return genome_from_mapping(raw["genome"], str(path))
