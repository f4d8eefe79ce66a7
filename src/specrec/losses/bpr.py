"""Bayesian personalised ranking (Rendle et al., 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specrec.losses import LOSSES, Batch


def dot_scores(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """s(u, i) for the positive (B x 1) and the negatives (B x n) of each pair.

    Negatives are (B x n x d), one set per positive, or (n x d), one set shared by the batch.
    """
    users, negatives = batch.user_emb, batch.negative_emb
    positive = (users * batch.item_emb).sum(-1, keepdim=True)
    if negatives.ndim == 2:
        return positive, users @ negatives.T
    if negatives.shape[1] <= 8:  # a few per positive: elementwise beats a batch of tiny matmuls on a CPU
        return positive, (users.unsqueeze(1) * negatives).sum(-1)
    return positive, torch.einsum("bd,bnd->bn", users, negatives)


@LOSSES.register("bpr")
@dataclass
class BPR:
    """L = -mean_{(u,i,j)} log sigma(s(u,i) - s(u,j)), over every sampled negative j of each positive."""

    needs_negatives = True

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        positive, negative = dot_scores(batch)
        return {"bpr": -F.logsigmoid(positive - negative).mean()}
