"""The search space: genes stay in range, and the space and the builder tables agree."""
from __future__ import annotations

import random

import pytest

from pipeline import tables
from pipeline.params import load_params
from pipeline.space import GENE_CATALOG, Choice, FloatRange, IntRange
from tests.conftest import ROOT

TABLE_OF_GENE = {
    "norm": tables.NORMS,
    "activation": tables.ACTIVATIONS,
    "pooling": tables.POOLING,
    "global_pool": tables.HEADS,
    "attention": tables.ATTENTION,
    "optimizer": tables.OPTIMIZERS,
    "scheduler": tables.SCHEDULERS,
    "lambda_schedule": tables.LAMBDA_SCHEDULES,
    "loss": tables.LOSSES,
    "augment": tables.AUGMENTATIONS,
}


@pytest.mark.parametrize("gene", [IntRange(2, 9), FloatRange(0.1, 0.5), FloatRange(1e-5, 1.0, log=True), Choice(("a", "b", "c"))])
def test_sample_and_mutate_stay_inside_the_gene(gene):
    rng = random.Random(0)
    for _ in range(300):
        value = gene.sample(rng)
        assert gene.contains(value)
        assert gene.contains(gene.mutate(value, rng))


def test_mutation_changes_an_unpinned_choice():
    rng = random.Random(1)
    assert all(Choice(("a", "b")).mutate("a", rng) == "b" for _ in range(20))


def test_every_offered_name_resolves_and_every_table_entry_is_offered():
    """No name the space offers is missing from its table, and no table entry is dead."""
    default = load_params(ROOT / "params.yaml").space
    for gene, table in TABLE_OF_GENE.items():
        offered = set(GENE_CATALOG[gene].names)
        assert offered == set(table), gene
        assert set(default[gene].values()) == set(table), f"params.yaml does not offer all of {gene}"


def test_default_params_offer_the_whole_catalog():
    default = load_params(ROOT / "params.yaml").space
    for name, definition in GENE_CATALOG.items():
        if definition.kind in ("name", "bool"):
            assert set(default[name].values()) == set(definition.names), name
    assert len(tables.OPTIMIZERS) == 10
    assert len(set(tables.SCHEDULERS) - {"none"}) == 10
    assert len(tables.LOSSES) + len(tables.REFUSED_LOSSES) == 14
