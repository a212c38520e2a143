"""The fourteen loss criteria of the search space, each adapted to single-label classification.

Every entry of `LOSSES` has the signature `(logits, target, embedding, genome) -> loss`:
`target` holds class indices, `embedding` the penultimate features. The adapter in each
docstring is what makes a criterion built for another task mean "predict the right class".
`REFUSED_LOSSES` names criteria with no sound meaning here; params.yaml naming one is
rejected with the reason.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _one_hot(logits, target):
    return F.one_hot(target, logits.shape[1]).to(logits.dtype)


def cross_entropy(logits, target, embedding, genome):
    """Softmax cross-entropy, with the `label_smoothing` gene."""
    return F.cross_entropy(logits, target, label_smoothing=genome["label_smoothing"])


def nll(logits, target, embedding, genome):
    """NLL expects log-probabilities: feed it log_softmax of the logits."""
    return F.nll_loss(F.log_softmax(logits, dim=1), target)


def mse(logits, target, embedding, genome):
    """Squared error between softmax probabilities and the one-hot target (Brier score)."""
    return F.mse_loss(F.softmax(logits, dim=1), _one_hot(logits, target))


def l1(logits, target, embedding, genome):
    """Absolute error between softmax probabilities and the one-hot target."""
    return F.l1_loss(F.softmax(logits, dim=1), _one_hot(logits, target))


def smooth_l1(logits, target, embedding, genome):
    """Huber loss between softmax probabilities and the one-hot target."""
    return F.smooth_l1_loss(F.softmax(logits, dim=1), _one_hot(logits, target), beta=0.5)


def bce(logits, target, embedding, genome):
    """Per-class sigmoid probabilities against the one-hot target (one-vs-rest)."""
    return F.binary_cross_entropy(torch.sigmoid(logits), _one_hot(logits, target))


def bce_with_logits(logits, target, embedding, genome):
    """One-vs-rest on the logits directly (numerically stable form of `bce`)."""
    return F.binary_cross_entropy_with_logits(logits, _one_hot(logits, target))


def kl_div(logits, target, embedding, genome):
    """KL(target || softmax): kl_div takes log-probabilities and a (one-hot) distribution."""
    return F.kl_div(F.log_softmax(logits, dim=1), _one_hot(logits, target), reduction="batchmean")


def cosine_embedding(logits, target, embedding, genome):
    """Pull the logit vector's direction onto the one-hot vector of the true class (y = 1)."""
    ones = torch.ones(len(target), device=logits.device)
    return F.cosine_embedding_loss(logits, _one_hot(logits, target), ones)


def triplet_margin(logits, target, embedding, genome):
    """Cross-entropy on the head plus a batch-hard triplet term on the normalized embedding:
    each anchor's farthest same-class sample against its nearest other-class sample."""
    classification = F.cross_entropy(logits, target)
    emb = F.normalize(embedding, dim=1)
    distances = torch.cdist(emb, emb)
    same = target[:, None] == target[None, :]
    eye = torch.eye(len(target), dtype=torch.bool, device=target.device)
    positive_mask = same & ~eye
    valid = positive_mask.any(dim=1) & (~same).any(dim=1)
    if not bool(valid.any()):
        return classification
    positive = torch.where(positive_mask, distances, torch.full_like(distances, -1.0)).argmax(dim=1)
    negative = torch.where(~same, distances, torch.full_like(distances, 1e9)).argmin(dim=1)
    triplet = F.triplet_margin_loss(emb[valid], emb[positive[valid]], emb[negative[valid]], margin=0.2)
    return classification + triplet


def _true_and_others(logits, target):
    true = logits.gather(1, target[:, None])
    others = logits[~_one_hot(logits, target).bool()].view(len(target), -1)
    return true, others


def margin_ranking(logits, target, embedding, genome):
    """Rank the true class's logit above every other class's logit by a margin of 1."""
    true, others = _true_and_others(logits, target)
    true = true.expand_as(others)
    return F.margin_ranking_loss(true.reshape(-1), others.reshape(-1), torch.ones_like(others).reshape(-1), margin=1.0)


def hinge_embedding(logits, target, embedding, genome):
    """Treat -log p(class) as a distance: small for the true class (y = 1), at least the
    margin for every other class (y = -1)."""
    distance = -F.log_softmax(logits, dim=1)
    labels = 2 * _one_hot(logits, target) - 1
    return F.hinge_embedding_loss(distance, labels, margin=2.0)


def multilabel_margin(logits, target, embedding, genome):
    """The multi-label margin loss with a one-element label set: the true class, then -1."""
    labels = torch.full_like(logits, -1, dtype=torch.long)
    labels[:, 0] = target
    return F.multilabel_margin_loss(logits, labels)


LOSSES = {
    "cross_entropy": cross_entropy,
    "nll": nll,
    "mse": mse,
    "l1": l1,
    "smooth_l1": smooth_l1,
    "bce": bce,
    "bce_with_logits": bce_with_logits,
    "kl_div": kl_div,
    "cosine_embedding": cosine_embedding,
    "triplet_margin": triplet_margin,
    "margin_ranking": margin_ranking,
    "hinge_embedding": hinge_embedding,
    "multilabel_margin": multilabel_margin,
}

REFUSED_LOSSES = {
    "ctc": "CTC aligns a sequence of outputs to a shorter label sequence; a single-label image has "
    "no sequence to align, so it would only be cross-entropy with an extra blank class",
}
