"""Binary cross-entropy on positives and sampled negatives: KGCN's CTR loss (RESEARCH §2.3, step 5)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specrec.losses import LOSSES, Batch, require
from specrec.losses.bpr import dot_scores


def pair_scores(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the positive (B x 1) and of the negatives (B x n) of each pair.

    With `batch.score_pairs` (a model whose score is not a dot product of its tables, e.g. KGCN) all B(1 + n)
    pairs go through one call; without it, dot products of the batch's embeddings. Negatives are (B x n),
    one set per positive, or (n,), one set shared by the batch.
    """
    if batch.negatives is None:
        raise ValueError("bce needs sampled negatives: give its recipe n_negatives >= 1")
    if batch.score_pairs is None:
        return dot_scores(batch)
    negatives = batch.negatives
    if negatives.ndim == 1:
        negatives = negatives.expand(batch.users.numel(), -1)
    users = torch.cat([batch.users, batch.users.unsqueeze(1).expand_as(negatives).reshape(-1)])
    scores = batch.score_pairs(users, torch.cat([batch.items, negatives.reshape(-1)]))
    n_pairs = batch.users.numel()
    return scores[:n_pairs].unsqueeze(1), scores[n_pairs:].view(negatives.shape)


def embedding_l2(batch: Batch) -> torch.Tensor:
    """½ (‖E_u‖² + ‖E_i‖² + ‖E_neg‖²) / B over the batch's rows: KGCN's λ·L2 restricted to the batch."""
    runs = batch.user_emb.ndim - 2  # a stack of runs has one more leading dimension: one sum per run
    rows = [batch.user_emb, batch.item_emb] + ([batch.negative_emb] if batch.negative_emb is not None else [])
    total = sum(part.square().flatten(runs).sum(-1) for part in rows)
    return total / (2 * batch.users.numel())


@LOSSES.register("bce")
@dataclass
class BinaryCrossEntropy:
    """L = mean_b [softplus(-s(u, i⁺)) + mean_n softplus(s(u, i⁻_n))]  (+ l2 · embedding_l2).

    softplus(-s) = -log σ(s) and softplus(s) = -log(1 - σ(s)): the BCE of a positive row (label 1) and of a
    negative row (label 0). With one negative per positive (KGCN's 1:1 sampling) L is twice the mean BCE over
    the 2B labelled rows that KGCN and RecBole average, i.e. the same objective at twice the scale (Adam is
    nearly invariant to that, a hand-tuned l2 is not).

    l2 (default 0) adds KGCN's λ·½‖·‖² on the batch's user, item and negative embeddings (the rows of the
    model's tables, as RecBole does); KGCN's TF code puts it on all embeddings and aggregator weights, which
    `weight_decay` in the optimiser approximates instead.
    """

    l2: float = 0.0
    needs_negatives = True
    stackable = True

    def __post_init__(self) -> None:
        require(self, non_negative=("l2",))

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        positive, negative = pair_scores(batch)
        parts = {"bce": (F.softplus(-positive).squeeze(-1) + F.softplus(negative).mean(-1)).mean(-1)}
        if self.l2:
            parts["l2"] = self.l2 * embedding_l2(batch)
        return parts
