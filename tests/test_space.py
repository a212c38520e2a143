"""The search space: genes stay in range, and the space and the builder tables agree."""
from __future__ import annotations

import random

import pytest

from pipeline.genome.catalog import GENE_CATALOG
from pipeline.nn.blocks import ACTIVATIONS, ATTENTION, HEADS, NORMS, POOLING
from pipeline.params import load_params
from pipeline.search.space import Choice, FloatRange, IntRange
from pipeline.train.augment import AUGMENTATIONS
from pipeline.train.losses import LOSSES, REFUSED_LOSSES
from pipeline.train.optim import LAMBDA_SCHEDULES, LR_SCALING, OPTIMIZERS, SCHEDULERS
from tests.helpers import ROOT

TABLE_OF_GENE = {
    "norm": NORMS,
    "activation": ACTIVATIONS,
    "pooling": POOLING,
    "global_pool": HEADS,
    "attention": ATTENTION,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
    "lambda_schedule": LAMBDA_SCHEDULES,
    "loss": LOSSES,
    "augment": AUGMENTATIONS,
    "lr_scaling": LR_SCALING,
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


def test_an_integer_mutation_always_moves_and_reaches_both_bounds():
    rng = random.Random(0)
    gene = IntRange(0, 9)
    for value in gene.values():
        moved = [gene.mutate(value, rng) for _ in range(200)]
        assert value not in moved and all(gene.contains(m) for m in moved)
    assert {gene.mutate(v, rng) for v in (1, 2, 3) for _ in range(200)} >= {0}
    assert {gene.mutate(v, rng) for v in (8, 7, 6) for _ in range(200)} >= {9}


#: The speed runs' trainer techniques: in the catalog (and the speed-run recipe), off in the
#: default space until the ablation benchmark says they pay (README, "Trainer techniques").
NOT_YET_IN_THE_DEFAULT_SPACE = {"norm": {"batch_no_scale"}, "augment": {"flip_translate", "alternating_flip", "alternating_flip_translate"},
                                "whiten": {True}, "tta": {True}, "lr_scaling": {"linear", "sqrt"}}


def test_every_offered_name_resolves_and_every_table_entry_is_offered():
    """No name the space offers is missing from its table, and no table entry is dead."""
    default = load_params(ROOT / "params.yaml").space
    for gene, table in TABLE_OF_GENE.items():
        offered = set(GENE_CATALOG[gene].names)
        assert offered == set(table), gene
        expected = set(table) - NOT_YET_IN_THE_DEFAULT_SPACE.get(gene, set())
        assert set(default[gene].values()) == expected, f"params.yaml does not offer all of {gene}"


def test_default_params_offer_the_whole_catalog_but_the_unmeasured_techniques():
    default = load_params(ROOT / "params.yaml").space
    for name, definition in GENE_CATALOG.items():
        if definition.kind in ("name", "bool"):
            expected = set(definition.names) - NOT_YET_IN_THE_DEFAULT_SPACE.get(name, set())
            assert set(default[name].values()) == expected, name
    assert default["ema"].values() == [0.0]
    assert len(OPTIMIZERS) == 10
    assert len(set(SCHEDULERS) - {"none"}) == 10
    assert len(LOSSES) + len(REFUSED_LOSSES) == 14
