"""A user -> items index (CSR) shared by the sampler and the evaluator."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

BITMAP_LIMIT_BITS = 2**31  # 256 MiB: above this, membership is tested by binary search


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

    def rows(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(position in `users`, item) of every entry in the rows of `users` (which may repeat)."""
        start = self.indptr[users]
        counts = self.indptr[users + 1] - start
        position = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), counts)
        first = torch.cumsum(counts, 0) - counts
        offset = torch.arange(int(counts.sum()), device=users.device) - torch.repeat_interleave(first, counts)
        return position, self.indices[torch.repeat_interleave(start, counts) + offset]

    # always eager: its shapes depend on the data and torch.compile cannot trace sparse products, so inside
    # a compiled loss (DirectSpec+'s adaptive temperatures, train.compile) it would break the graph with
    # warnings
    @torch.compiler.disable
    def share_matrix(self, users: torch.Tensor) -> torch.Tensor:
        """(B x B) bool: do users a and b share an item? A sparse (B x items) product, never n x n."""
        position, items = self.rows(users)
        values = torch.ones(position.numel(), device=users.device)
        shape = (users.numel(), self.n_items)
        rows = torch.sparse_coo_tensor(torch.stack([position, items]), values, shape, check_invariants=False)
        with warnings.catch_warnings():  # torch flags sparse x sparse products as beta; the result is exact
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse.mm(rows, rows.t()).to_dense() > 0

    def transpose(self) -> UserItems:
        """The item -> users index of the same interactions."""
        users, items = self.pairs()
        return UserItems.from_pairs(items.cpu().numpy(), users.cpu().numpy(), self.n_items, self.n_users).to(
            self.indptr.device
        )

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Vectorised membership test of (user, item) pairs: a lookup in a bit per (user, item) cell where
        that bitmap is small enough, else a binary search on user * n_items + item."""
        query = users.to(torch.int64) * self.n_items + items.to(torch.int64)
        bitmap = self.bitmap
        if bitmap is not None:
            return ((bitmap[query >> 3].to(torch.int64) >> (query & 7)) & 1).bool()
        keys = self.keys
        position = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
        return keys[position] == query if keys.numel() else torch.zeros_like(query, dtype=torch.bool)

    @cached_property
    def bitmap(self) -> torch.Tensor | None:
        """One bit per (user, item) cell, set for training pairs (None above BITMAP_LIMIT_BITS cells; at
        ML-1M 2.8 MB, at Gowalla 153 MB). A lookup is one gather instead of a log2(n)-step search."""
        cells = self.n_users * self.n_items
        if cells > BITMAP_LIMIT_BITS:
            return None
        keys = torch.unique_consecutive(self.keys)  # sorted; a repeated pair must set its bit once
        # distinct keys set distinct bits, so adding the bit values of a byte is OR-ing them
        bits = torch.ones_like(keys, dtype=torch.int32) << (keys & 7).to(torch.int32)
        packed = torch.zeros((cells + 7) // 8, dtype=torch.int32, device=keys.device)
        return packed.index_add_(0, keys >> 3, bits).to(torch.uint8)

    @cached_property
    def keys(self) -> torch.Tensor:
        # Sorted because users ascend with indptr and items are sorted within each user.
        users, items = self.pairs()
        return users * self.n_items + items
