"""Losses and regularisers, each a small module in one of two registries.

A loss maps a `Batch` of in-batch embeddings to a dict of named loss parts; a regulariser maps one table of
in-batch embeddings (the unique users, or the unique items) to a scalar. A *recipe* (specrec.recipes) names a
loss, its sampler and its regularisers with their schedules, e.g. `directau+sr_warm`.
Adding a loss = one module with a registered dataclass + one import line below: the dataclass's fields are
the loss's parameters (what a recipe may set, with their types and defaults), so neither the schema nor the
config check needs to know it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from specrec.interactions import UserItems
from specrec.registry import Registry

LOSSES: Registry = Registry("loss")
REGULARIZERS: Registry = Registry("regularizer")


def loss_parameters(name: str) -> dict[str, type]:
    """A registered loss's parameters, its dataclass fields, with the type each value is read as."""
    loss = LOSSES[name]
    hints = typing.get_type_hints(loss)
    readable = {}
    for field in dataclasses.fields(loss):
        # `float | None` is read as float; the first of the union's member types that is not None
        kinds = [kind for kind in typing.get_args(hints[field.name]) if kind is not type(None)]
        readable[field.name] = kinds[0] if kinds else hints[field.name]
    return readable


def require(loss, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    """Range checks of a loss's parameters (None: unset), naming the parameter and the value."""
    for name in positive + non_negative:
        value = getattr(loss, name)
        if value is not None and not (value > 0 if name in positive else value >= 0):
            bound = "> 0" if name in positive else ">= 0"
            raise ValueError(f"{name} must be {bound}, got {value}")


@dataclass
class Batch:
    """One mini-batch of (user, positive item) pairs with everything a loss may need.

    user_emb, item_emb: (B x d) embeddings of the pairs; negative_emb: (B x n x d) per positive, (n x d)
    shared by the batch, or None. Runs trained as a stack (specrec.train) have one more leading dimension
    on every embedding and table, the run: a loss that reduces each run apart (`stackable = True`) gives
    one value per run. The full tables and the training index are there for losses that look
    beyond the pairs (in-batch uniqueness, DirectSpec+'s adaptive temperatures).
    """

    users: torch.Tensor
    items: torch.Tensor
    user_emb: torch.Tensor
    item_emb: torch.Tensor
    negatives: torch.Tensor | None
    negative_emb: torch.Tensor | None
    user_table: torch.Tensor
    item_table: torch.Tensor
    train: UserItems | None = None
    train_by_item: UserItems | None = None
    score_pairs: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    generator: torch.Generator | None = None

    @cached_property
    def unique_users(self) -> torch.Tensor:
        return torch.unique(self.users)

    @cached_property
    def unique_items(self) -> torch.Tensor:
        """Positives and sampled negatives of the batch (StableRankReg's in-batch item set)."""
        if self.negatives is None:
            return torch.unique(self.items)
        return torch.unique(torch.cat([self.items, self.negatives.reshape(-1)]))

    def unique_user_emb(self) -> torch.Tensor:
        return self.user_table[..., self.unique_users, :]  # a stack of runs' tables: each run's rows

    def unique_item_emb(self) -> torch.Tensor:
        return self.item_table[..., self.unique_items, :]


@dataclass
class TermContext:
    """The data a term may be built from: the item metadata and the synopsis embeddings of the dataset
    (paper 1's item-item contrastive task), and the embedding size of the model."""

    dim: int
    item_meta: Path | None = None
    text_embeddings: Path | None = None

    def items(self) -> pd.DataFrame:
        if self.item_meta is None:
            raise ValueError("this recipe needs the item metadata (items.parquet)")
        return pd.read_parquet(self.item_meta)

    def text(self) -> torch.Tensor:
        if self.text_embeddings is None:
            raise ValueError("this recipe needs the synopsis embeddings: enable `text` in the config")
        return torch.from_numpy(np.load(self.text_embeddings))


# registration side effects
from specrec.losses import align, bce, bpr, directspec, regularizers, semantic_cl, ssm  # noqa: E402,F401,I001

__all__ = ["LOSSES", "REGULARIZERS", "Batch"]
