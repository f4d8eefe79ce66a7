"""Most-popular baseline: every user gets the items with the most training interactions.

Written as a rank-1 factorisation (all-ones users, item counts as a 1-d item table), so it runs through the
same evaluator and spectral analysis as the learned models: it is the fully collapsed end of the spectrum.
"""

from __future__ import annotations

import torch
from torch import nn

from specrec.models import MODELS


@MODELS.register("popularity")
class Popularity(nn.Module):
    trainable = False

    def __init__(self, n_users: int, n_items: int, train_items: torch.Tensor | None = None, **_: object):
        super().__init__()
        if train_items is None:
            raise ValueError("popularity needs the training items to count")
        counts = torch.bincount(train_items.cpu(), minlength=n_items).float()
        self.register_buffer("user_table", torch.ones(n_users, 1, dtype=torch.float32))
        self.register_buffer("item_table", counts.unsqueeze(1))

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_table, self.item_table
