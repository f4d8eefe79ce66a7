"""Matrix factorisation: one free embedding per user and per item, score s(u, i) = e_u . e_i."""

from __future__ import annotations

import torch
from torch import nn

from specrec.models import MODELS


@MODELS.register("mf")
class MatrixFactorization(nn.Module):
    trainable = True
    stackable = True  # its forward gives the tables: runs of it can train as a stack

    def __init__(self, n_users: int, n_items: int, dim: int = 64, init_std: float = 0.1, **_: object):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user.weight, self.item.weight
