"""best.yaml, the search's answer in a file a user reads and edits: the active genes of the
best genome and the fitness that earned them; and validation of any user-visible genome."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import yaml
from pydantic import Field, ValidationError, create_model

from pipeline.errors import UserError, first_line
from pipeline.genome.catalog import GENE_CATALOG, gene_value_type
from pipeline.genome.genome import Genome, active_genes, canonical
from pipeline.validation import Section, one_line


class _GenomeFields(Section):
    noun: ClassVar[str] = "gene"


#: A whole genome, each gene validated like a value of `space:` (missing = default).
GenomeModel = create_model(
    "Genome", __base__=_GenomeFields,
    **{name: (gene_value_type(d), Field(d.default, description=d.why or None)) for name, d in GENE_CATALOG.items()},
)


def genome_from_mapping(raw: Any, source: str) -> Genome:
    """Validate a user-visible genome (best.yaml, a model file); missing genes take their
    defaults; any problem is one line naming the file and the gene."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping 'genome:' of gene -> value")
    try:
        genome = dict(GenomeModel.model_validate(raw))
    except ValidationError as err:
        raise UserError(f"{source}: {one_line(err, GenomeModel, 'genome')}") from None
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
        raise UserError(f"{path}: not valid YAML ({first_line(err)})") from None
    if not isinstance(raw, dict) or "genome" not in raw:
        raise UserError(f"{path}: expected a top-level 'genome:' mapping")
    return genome_from_mapping(raw["genome"], str(path))
