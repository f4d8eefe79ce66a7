"""Negative samplers: `sampler(users, items, n, train, generator)` returns item ids, (B x n) per positive
or (n,) shared by the whole batch.

`uniform` draws n items per positive, uniformly, and re-draws items the user trained on (as LightGCN's
sampler does). `batch_items` draws n per positive uniformly from the distinct items among the batch's
positives (StableRankReg's MF sampler: `randint` over the item nodes of the mini-batch). `in_batch` draws
from the batch's positives themselves, so popular items are drawn as often as they occur. `shared` draws
one uniform set of n items per mini-batch that every user in it is scored against: a (B x d) @ (d x n)
matmul instead of gathering B*n*d values, which makes many negatives cheap (the usual sampled-softmax
set-up); accidental hits are not removed, and at n << n_items they are rare.
"""

from __future__ import annotations

import torch

from specrec.interactions import UserItems
from specrec.registry import Registry

SAMPLERS: Registry = Registry("sampler")


@SAMPLERS.register("uniform")
def uniform_negatives(
    users: torch.Tensor,
    items: torch.Tensor,
    n: int,
    train: UserItems,
    generator: torch.Generator,
    rounds: int = 3,
) -> torch.Tensor:
    """(B x n) uniform negatives; items the user trained on are re-drawn (a few vectorised rounds).

    Every round draws a full candidate set and keeps it only where there is a clash: no count of clashes is
    read back, so on a GPU the sampler never waits for the host.
    """
    shape = (users.numel(), n)
    negatives = torch.randint(train.n_items, shape, generator=generator, device=users.device)
    owners = users.unsqueeze(1).expand(shape)
    for _ in range(rounds):
        clash = train.contains(owners, negatives)
        redraw = torch.randint(train.n_items, shape, generator=generator, device=users.device)
        negatives = torch.where(clash, redraw, negatives)
    return negatives


@SAMPLERS.register("shared")
def shared_negatives(
    users: torch.Tensor, items: torch.Tensor, n: int, train: UserItems, generator: torch.Generator
) -> torch.Tensor:
    """(n,) uniform items shared by every positive of the mini-batch."""
    return torch.randint(train.n_items, (n,), generator=generator, device=users.device)


@SAMPLERS.register("in_batch")
def in_batch_negatives(
    users: torch.Tensor, items: torch.Tensor, n: int, train: UserItems, generator: torch.Generator
) -> torch.Tensor:
    """(B x n) items drawn with replacement from the batch's positives (no re-draw of training items)."""
    pick = torch.randint(items.numel(), (items.numel(), n), generator=generator, device=items.device)
    return items[pick]


@SAMPLERS.register("batch_items")
def batch_item_negatives(
    users: torch.Tensor, items: torch.Tensor, n: int, train: UserItems, generator: torch.Generator
) -> torch.Tensor:
    """(B x n) items drawn uniformly, with replacement, from the distinct items of the batch's positives.

    A position is drawn with probability 1 / (occurrences of its item in the batch), which is uniform over
    the distinct items without `torch.unique` (whose data-dependent size would make a GPU wait for the host).
    """
    counts = torch.zeros(train.n_items, device=items.device).index_add_(
        0, items, torch.ones_like(items, dtype=torch.float)
    )
    weights = 1.0 / counts[items]
    pick = torch.multinomial(weights, items.numel() * n, replacement=True, generator=generator)
    return items[pick].view(items.numel(), n)
