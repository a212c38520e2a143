"""Every name -> constructor table the search space offers, in one place.

The space reads its allowed names from here, so adding a table entry offers it, and a test
checks the converse (every offered name resolves).
"""
from pipeline.augment import AUGMENTATIONS
from pipeline.blocks import ACTIVATIONS, ATTENTION, HEADS, NORMS, POOLING
from pipeline.losses import LOSSES, REFUSED_LOSSES
from pipeline.optim import LAMBDA_SCHEDULES, OPTIMIZERS, OPTIMIZERS_WITH_MOMENTUM, SCHEDULERS

__all__ = [
    "ACTIVATIONS", "ATTENTION", "AUGMENTATIONS", "HEADS", "LAMBDA_SCHEDULES", "LOSSES", "NORMS",
    "OPTIMIZERS", "OPTIMIZERS_WITH_MOMENTUM", "POOLING", "REFUSED_LOSSES", "SCHEDULERS",
]
