"""Sampled softmax (as in StableRankReg's code: dot-product logits, optional temperature)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from specrec.losses import LOSSES, Batch, require
from specrec.losses.bpr import dot_scores


@LOSSES.register("ssm")
@dataclass
class SampledSoftmax:
    """L = -mean_{(u,i)} log exp(s(u,i)/T) / (exp(s(u,i)/T) + sum_{j in N_u} exp(s(u,j)/T))."""

    temperature: float = 1.0
    needs_negatives = True
    stackable = True

    def __post_init__(self) -> None:
        require(self, positive=("temperature",))

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        positive, negative = dot_scores(batch)
        logits = torch.cat([positive, negative], dim=-1) / self.temperature
        return {"ssm": -F.log_softmax(logits, dim=-1)[..., 0].mean(-1)}
