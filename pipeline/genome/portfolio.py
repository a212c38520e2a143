"""A strong start: textbook recipes a practitioner would try first, scaled to the data.

auto-sklearn 2.0 starts from a portfolio of configurations that worked across many
datasets; these are the CNN equivalents: a conv-BN-ReLU stack with SGD + Nesterov and a
one-cycle schedule, a residual net with AdamW and cosine decay and label smoothing, a
squeeze-and-excitation residual net with momentum SGD, and a small Adam baseline. Depth
follows the input size (one halving stage per doubling above 8 px, two to four stages) and
augmentation the image kind (mirroring for colour photos, shifts for small or grey images,
where a mirrored digit is another glyph); colour images of 32x32 and up also get the CIFAR-10
speed runs' recipe (`SPEED_RUN`). The search proposes them first, projected into the user's
space (a technique the space does not offer falls back to its plainer form, `PLAINER`, where
the space offers that, else to the gene's first option) and repaired for the input shape, and
spends the rest of its budget improving on them.
"""
from __future__ import annotations

import math
from typing import Sequence

from pipeline.genome.genome import default_genome, repair
from pipeline.search.space import Space

RECIPES: dict[str, dict] = {
    "conv-bn-relu, sgd+nesterov, one-cycle": dict(
        blocks_per_stage=2, width=32, kernel=3, padding="same", norm="batch", activation="relu", pooling="max",
        global_pool="avg", residual=False, attention="none", dropout=0.0, optimizer="sgd_nesterov", lr=0.05,
        momentum=0.9, weight_decay=5e-4, batch_size=128, scheduler="onecycle", loss="cross_entropy"),
    "residual, adamw, cosine, label smoothing": dict(
        blocks_per_stage=2, width=32, kernel=3, padding="same", norm="batch", activation="relu", pooling="max",
        global_pool="avg", residual=True, attention="none", dropout=0.1, optimizer="adamw", lr=2e-3,
        weight_decay=5e-2, batch_size=128, scheduler="cosine", loss="cross_entropy", label_smoothing=0.1),
    "residual + squeeze-excitation, momentum sgd, cosine": dict(
        blocks_per_stage=1, width=48, kernel=3, padding="same", norm="batch", activation="silu", pooling="max",
        global_pool="avg", residual=True, attention="se", dropout=0.0, optimizer="sgd_momentum", lr=0.05,
        momentum=0.9, weight_decay=5e-4, batch_size=64, scheduler="cosine", loss="cross_entropy"),
    "small adam baseline": dict(
        blocks_per_stage=1, width=32, kernel=3, padding="same", norm="batch", activation="relu", pooling="max",
        global_pool="avg", residual=False, attention="none", dropout=0.0, optimizer="adam", lr=1e-3,
        weight_decay=0.0, batch_size=64, scheduler="none", loss="cross_entropy"),
}


#: The CIFAR-10 speed runs' recipe (Keller Jordan's airbench94, after Tysam's hlb-CIFAR10 and
#: David Page's ResNet-8 "How to train your ResNet"), expressed in this space and fitted to a
#: CPU's short budgets: a patch-whitening stem, three stages of two conv-BN-GELU blocks with max
#: pooling, batch norms with a frozen scale, a global max pool; Nesterov SGD under a one-cycle
#: schedule, label smoothing 0.2, the alternating (derandomized) flip, flip-averaged evaluation.
#: airbench's widths (64/256/256) and 1024-image batches at momentum 0.85 are for a GPU; here the
#: first stage has as many channels as the shorter side has pixels (32 at 32x32, at most 64),
#: batches are 64 images at learning rate 0.05 and momentum 0.9, and there is no 2-pixel
#: translation: on the CIFAR-10 subset at 4 epochs, both changes together scored 4.2 points
#: more than the published choices (batch 1024 scaled to 128, translation) on 3 seeds, and
#: 4.3 more on 3 other seeds (README, "Trainer techniques"). For colour images of 32x32 and
#: up, where whitening and mirroring apply.
SPEED_RUN = dict(
    blocks_per_stage=2, kernel=3, padding="same", norm="batch_no_scale", activation="gelu", pooling="max",
    global_pool="max", residual=False, attention="none", dropout=0.0, whiten=True, optimizer="sgd_nesterov",
    lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=64, scheduler="onecycle", loss="cross_entropy",
    label_smoothing=0.2, augment="alternating_flip", tta=True)


#: A technique's plainer form, for a space that does not offer the technique: in the default
#: space the speed run mirrors its images at random instead of alternately (rather than not at
#: all) and keeps the batch norm's scale.
PLAINER: dict[str, dict] = {
    "augment": {"alternating_flip_translate": "flip_translate", "flip_translate": "flip", "alternating_flip": "flip"},
    "norm": {"batch_no_scale": "batch"},
}


def plainer(recipe: dict, space: Space) -> dict:
    """The recipe with each technique `space` does not offer replaced by its plainest
    offered form (`PLAINER`, followed as far as needed); other genes as they are."""
    out = dict(recipe)
    for gene, forms in PLAINER.items():
        if gene not in space.names:
            continue
        while not space[gene].contains(out.get(gene)) and out.get(gene) in forms:
            out[gene] = forms[out[gene]]
    return out


def speed_run(input_shape: Sequence[int]) -> dict | None:
    """The speed-run recipe for colour images of at least 32x32; None for other inputs."""
    channels, height, width = input_shape
    if channels != 3 or min(height, width) < 32:
        return None
    return {**SPEED_RUN, "stages": 3, "width": min(64, height, width)}


def scaled(recipe: dict, input_shape: Sequence[int]) -> dict:
    """The recipe for this input: stages by size, augmentation by image kind."""
    channels, height, width = input_shape
    stages = max(2, min(4, round(math.log2(min(height, width))) - 2))
    augment = "flip" if channels == 3 and min(height, width) >= 16 else "translate"
    return {**default_genome(), "stages": stages, "augment": augment, **recipe}


def portfolio(space: Space, input_shape: Sequence[int]) -> list[dict]:
    """The recipes as genomes of `space` (projected into it, repaired for the input shape),
    distinct, in order."""
    out, seen = [], set()
    recipes = [scaled(recipe, input_shape) for recipe in RECIPES.values()]
    fast = speed_run(input_shape)
    if fast is not None:
        recipes.append({**default_genome(), **fast})
    for recipe in recipes:
        genome = repair(space.project(plainer(recipe, space)), space, input_shape)
        key = tuple(sorted(genome.items()))
        if key not in seen:
            seen.add(key)
            out.append(genome)
    return out
