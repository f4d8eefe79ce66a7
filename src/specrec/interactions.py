"""A user -> items index (CSR) shared by the sampler and the evaluator."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class UserItems:
    """Items of every user in CSR form: the items of user u are indices[indptr[u]:indptr[u+1]], sorted."""

    indptr: torch.Tensor  # (n_users + 1,) int64
    indices: torch.Tensor  # (nnz,) int64
    n_items: int

    @classmethod
    def from_pairs(cls, users, items, n_users: int, n_items: int) -> UserItems:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        order = np.lexsort((items, users))
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return cls(torch.from_numpy(indptr), torch.from_numpy(items[order]), n_items)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, n_users: int, n_items: int) -> UserItems:
        return cls.from_pairs(frame["user"].to_numpy(), frame["item"].to_numpy(), n_users, n_items)

    @property
    def n_users(self) -> int:
        return self.indptr.numel() - 1

    def counts(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def to(self, device) -> UserItems:
        return UserItems(self.indptr.to(device), self.indices.to(device), self.n_items)

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        users = torch.repeat_interleave(torch.arange(self.n_users, device=self.indptr.device), self.counts())
        return users, self.indices

    def block(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(row within the block, item) of every entry of users start..stop-1."""
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        rows = torch.repeat_interleave(
            torch.arange(stop - start, device=self.indptr.device), self.counts()[start:stop]
        )
        return rows, self.indices[lo:hi]

    def dense_block(self, start: int, stop: int) -> torch.Tensor:
        """Boolean (stop-start) x n_items membership matrix of a block of users."""
        dense = torch.zeros(stop - start, self.n_items, dtype=torch.bool, device=self.indptr.device)
        rows, items = self.block(start, stop)
        dense[rows, items] = True
        return dense

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Vectorised membership test of (user, item) pairs, by binary search on user * n_items + item."""
        keys = self.keys
        query = users.to(torch.int64) * self.n_items + items.to(torch.int64)
        position = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
        return keys[position] == query if keys.numel() else torch.zeros_like(query, dtype=torch.bool)

    @cached_property
    def keys(self) -> torch.Tensor:
        # Sorted because users ascend with indptr and items are sorted within each user.
        users, items = self.pairs()
        return users * self.n_items + items
