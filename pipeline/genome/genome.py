"""CNN genomes: one architecture plus training recipe, as a plain dict gene -> value.

`canonical` resets genes that have no effect for the rest of the genome (momentum for
Adam, ...), so that two genomes that train identically share one key and one seed; `repair`
makes a genome buildable on an input shape using only values the space allows. Together
they are the CNN problem's `repair`, which the search engine applies to every proposal.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pipeline.genome.catalog import CONDITIONAL_GENES, GENE_CATALOG
from pipeline.nn.model import InvalidArchitecture, plan_shapes
from pipeline.search.space import Space, derive_seed
from pipeline.search.space import genome_key as json_key

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
    """A stable identity: the engine's key of the canonical genome."""
    return json_key(canonical(genome))


def genome_seed(run_seed: int, genome: Mapping, budget: int | None = None) -> int:
    """The training seed the search gives this genome at this budget (the train stage uses
    the same derivation for the final training)."""
    return derive_seed(run_seed, genome_key(genome), budget)


def is_valid(genome: Mapping, input_shape: Sequence[int]) -> bool:
    try:
        plan_shapes(genome, input_shape)
        return True
    except InvalidArchitecture:
        return False


def repair(genome: Mapping, space: Space, input_shape: Sequence[int]) -> Genome:
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


def conditions() -> tuple[tuple[str, str, frozenset], ...]:
    """The catalog's conditional genes in the engine's form (gene, parent, active values)."""
    return tuple((gene, parent, values) for gene, (parent, values) in CONDITIONAL_GENES.items())


def sample_genome(space: Space, rng, input_shape: Sequence[int]) -> Genome:
    """A random genome of the space, repaired for the input shape (what the engine does)."""
    return repair(space.sample(rng), space, input_shape)


def mutate_genome(genome: Mapping, space: Space, rng, indpb: float, input_shape: Sequence[int]) -> Genome:
    """A mutant within the space, repaired for the input shape (what the engine does)."""
    return repair(space.mutate(genome, rng, indpb), space, input_shape)
