"""Genomes: canonical form, repair within the space, best.yaml round trip, seeds."""
from __future__ import annotations

import random

import pytest

from pipeline.errors import UserError
from pipeline.genome.files import best_yaml_text, load_best_yaml
from pipeline.genome.genome import (
    canonical,
    default_genome,
    genome_key,
    genome_seed,
    is_valid,
    mutate_genome,
    sample_genome,
)
from pipeline.params import load_params, params_from_dict
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def space():
    return load_params(ROOT / "params.yaml").space


def test_inactive_genes_do_not_change_identity():
    a = dict(default_genome(), optimizer="adam", momentum=0.85)
    b = dict(default_genome(), optimizer="adam", momentum=0.95)
    assert genome_key(a) == genome_key(b)
    assert genome_seed(0, a) == genome_seed(0, b)
    c = dict(a, optimizer="sgd_momentum")
    d = dict(b, optimizer="sgd_momentum")
    assert genome_key(c) != genome_key(d)


def test_seed_depends_on_run_seed_genome_and_budget():
    g = default_genome()
    assert genome_seed(0, g, 3) == genome_seed(0, dict(g), 3)
    assert len({genome_seed(0, g, 3), genome_seed(1, g, 3), genome_seed(0, g, 4)}) == 3


def test_best_yaml_round_trips_exactly(space, tmp_path):
    rng = random.Random(3)
    for _ in range(50):
        genome = sample_genome(space, rng, (1, 8, 8))
        path = tmp_path / "best.yaml"
        path.write_text(best_yaml_text(genome, {"val_accuracy": 0.5}))
        assert load_best_yaml(path) == canonical(genome)


def test_best_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("genome:\n  optimizer: lion\n")
    with pytest.raises(UserError, match=r"best.yaml: genome.optimizer: unknown choice 'lion'"):
        load_best_yaml(path)
    path.write_text("genome: [1, 2]\n")
    with pytest.raises(UserError, match="best.yaml"):
        load_best_yaml(path)
    with pytest.raises(UserError, match="not found"):
        load_best_yaml(tmp_path / "missing.yaml")


def test_repair_makes_genomes_valid_using_only_allowed_values():
    space = params_from_dict({"space": {"stages": {"low": 1, "high": 5}, "kernel": [5, 7], "padding": ["valid"]}}).space
    rng = random.Random(0)
    for _ in range(200):
        genome = sample_genome(space, rng, (1, 8, 8))
        assert is_valid(genome, (1, 8, 8))
        assert all(space[name].contains(value) for name, value in genome.items()), genome


def test_mutation_changes_the_genome_and_stays_in_space(space):
    rng = random.Random(0)
    genome = sample_genome(space, rng, (1, 8, 8))
    changed = 0
    for _ in range(100):
        mutant = mutate_genome(genome, space, rng, 0.1, (1, 8, 8))
        changed += genome_key(mutant) != genome_key(genome)
        assert all(space[name].contains(value) for name, value in mutant.items())
    assert changed >= 95


def test_same_seed_same_population(space):
    def population(seed):
        rng = random.Random(seed)
        return [sample_genome(space, rng, (1, 8, 8)) for _ in range(10)]

    assert population(7) == population(7)
    assert population(7) != population(8)
