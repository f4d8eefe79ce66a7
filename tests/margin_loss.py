"""A loss with a parameter no other loss has, registered the way a new loss is (tests/test_config.py): this
file and one import line, nothing in the schema or the config check."""

from dataclasses import dataclass

import torch

from specrec.losses import LOSSES, Batch, require
from specrec.losses.bpr import dot_scores


@LOSSES.register("margin_hinge")
@dataclass
class MarginHinge:
    """L = mean max(0, margin - s(u, i) + s(u, j)) over every sampled negative j."""

    margin: float = 1.0
    needs_negatives = True

    def __post_init__(self) -> None:
        require(self, non_negative=("margin",))

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        positive, negative = dot_scores(batch)
        return {"margin_hinge": torch.relu(self.margin - positive + negative).mean()}
