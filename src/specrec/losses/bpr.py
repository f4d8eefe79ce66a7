"""Bayesian personalised ranking (Rendle et al., 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specrec.losses import LOSSES


def dot_scores(users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor):
    """s(u, i) for the positive (B x 1) and the negatives (B x N) of each user.

    negatives are (B x N x d), one set per positive, or (N x d), one set shared by the batch.
    """
    positive = (users * positives).sum(-1, keepdim=True)
    if negatives.ndim == 2:
        return positive, users @ negatives.T
    return positive, torch.einsum("bd,bnd->bn", users, negatives)


@LOSSES.register("bpr")
@dataclass
class BPR:
    """L = -mean_{(u,i,j)} log sigma(s(u,i) - s(u,j)), over every sampled negative j of each positive."""

    n_negatives: int = 1
    sampler: str = "uniform"

    def __call__(self, users, positives, negatives) -> dict[str, torch.Tensor]:
        positive, negative = dot_scores(users, positives, negatives)
        return {"bpr": -F.logsigmoid(positive - negative).mean()}
