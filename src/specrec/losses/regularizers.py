"""Regularisers on a table of unique in-batch embeddings (StableRankReg's losses.py, re-implemented).

A recipe applies each one as gamma * (reg(unique users) + reg(unique items)) / 2, for the whole run or as a
warm start (specrec.recipes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from specrec.losses import REGULARIZERS
from specrec.spectral import stable_rank


@REGULARIZERS.register("stable_rank")
def negative_stable_rank(table: torch.Tensor) -> torch.Tensor:
    """-||X~||_F^2 / ||X~||_2^2 / d with X~ row-normalised: minimising it spreads energy over all directions.

    Row-normalised, ||X~||_F^2 = n is fixed, so this only shrinks the top singular value (WWW 2025).
    """
    return -stable_rank(F.normalize(table, dim=-1)) / table.shape[1]


@REGULARIZERS.register("uniformity")
def uniformity(table: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log mean_{x != x'} exp(-t ||x~ - x~'||^2) over all pairs of the in-batch set (Wang & Isola, 2020).

    For unit rows ||x - x'||^2 = 2 - 2 <x, x'>: one (n x n) matmul over the ordered pairs (each unordered
    pair twice, the same mean) instead of torch.pdist, whose backward pass is several times slower.
    """
    unit = F.normalize(table, dim=-1)
    n = unit.shape[0]
    logits = -t * (2.0 - 2.0 * unit @ unit.T)
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool, device=table.device), -torch.inf)
    return torch.logsumexp(logits.flatten(), dim=0) - math.log(n * (n - 1))
