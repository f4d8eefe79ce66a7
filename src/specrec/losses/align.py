"""Alignment of positive pairs alone (Wang & Isola, 2020): the collapse baseline; DirectAU's first term."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specrec.losses import LOSSES, Batch


@LOSSES.register("align")
@dataclass
class Align:
    """L_align = mean_{(u,i) in B} ||u~ - i~||^2 on l2-normalised embeddings.

    Alone it is minimised by mapping every user and item to one direction (a rank-1 table): a low-pass
    filter (DirectSpec), the complete-collapse baseline. DirectAU adds gamma * uniformity as a regulariser.
    """

    needs_negatives = False
    stackable = True

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        users = F.normalize(batch.user_emb, dim=-1)
        items = F.normalize(batch.item_emb, dim=-1)
        return {"align": (users - items).square().sum(-1).mean(-1)}
