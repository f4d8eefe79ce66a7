"""Bayesian personalised ranking (Rendle et al., 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specrec.losses import LOSSES, Batch


def dot_scores(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """s(u, i) for the positive (B x 1) and the negatives (B x n) of each pair.

    Negatives are (B x n x d), one set per positive, or (n x d), one set shared by the batch. Runs trained
    as a stack (specrec.train) have one more leading dimension on every embedding: the run.
    """
    users, negatives = batch.user_emb, batch.negative_emb
    positive = (users * batch.item_emb).sum(-1, keepdim=True)
    if negatives.ndim == users.ndim:  # (n x d): shared by the batch
        return positive, users @ negatives.mT
    # per-positive dot products are per row: a stack's rows are flattened into one batch of K * B rows
    rows = users.reshape(-1, users.shape[-1])
    negative = per_positive_dots(rows, negatives.reshape(rows.shape[0], *negatives.shape[-2:]))
    return positive, negative.view(*users.shape[:-1], negatives.shape[-2])


def per_positive_dots(users: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """(B x n) dot products of each user row (B x d) with its own negatives (B x n x d)."""
    if negatives.shape[1] <= 8:  # a few per positive: elementwise beats a batch of tiny matmuls on a CPU
        return (users.unsqueeze(1) * negatives).sum(-1)
    if negatives.device.type == "cpu":
        return _PerPositiveDots.apply(users, negatives)
    return torch.einsum("bd,bnd->bn", users, negatives)


class _PerPositiveDots(torch.autograd.Function):
    """einsum("bd,bnd->bn") with a backward that never transposes the (B x n x d) negatives: autograd's own
    copies them twice per step, 60 % of the op's time on a CPU (B = 16,384, n = 16: 53 instead of 132 ms
    forward and backward, 1 thread). The same values bit for bit: tests/test_losses.py."""

    @staticmethod
    def forward(ctx, users: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(users, negatives)
        return torch.einsum("bd,bnd->bn", users, negatives)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        users, negatives = ctx.saved_tensors
        user_grad = torch.bmm(grad.unsqueeze(1), negatives).squeeze(1)
        return user_grad, grad.unsqueeze(-1) * users.unsqueeze(1)


@LOSSES.register("bpr")
@dataclass
class BPR:
    """L = -mean_{(u,i,j)} log sigma(s(u,i) - s(u,j)), over every sampled negative j of each positive."""

    needs_negatives = True
    stackable = True

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        positive, negative = dot_scores(batch)
        return {"bpr": -F.logsigmoid(positive - negative).mean((-2, -1))}
