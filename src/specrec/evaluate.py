"""Full-ranking top-K metrics (RESEARCH.md §1.1), one implementation for every model and paper.

Scores of a block of users against all items are computed at once, already-seen items are masked with -inf,
and the hits of the top-K list are read off a boolean membership matrix: no per-user Python loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from specrec.interactions import UserItems


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B x k) ids of the k highest scores of each row, best first; equal scores in id order (lowest first).

    `torch.topk` leaves the order of ties to the kernel (it differs between CPU and GPU, and between
    versions), and with popularity-like scores the tie order alone moves Recall@20 by 10 %. Here the list
    is the first k items of the order (score descending, item id ascending) on every device. A row whose
    k-th and (k+1)-th best scores tie has its boundary settled from the full row (the tied items with the
    lowest ids get in); other rows only re-order their k items. NaN scores rank below every number.
    """
    n = scores.shape[1]
    if k > n:
        raise ValueError(f"k={k} is larger than the number of items ({n})")
    values, ids = torch.topk(scores, min(k + 1, n), dim=1)
    if torch.isnan(values[:, 0]).any():  # topk ranks NaN above everything: a row with one has it first
        scores = scores.nan_to_num(nan=-torch.inf)
        values, ids = torch.topk(scores, min(k + 1, n), dim=1)
    if k < n:
        boundary = torch.nonzero(values[:, k - 1] == values[:, k]).squeeze(1)
        values, ids = values[:, :k].contiguous(), ids[:, :k].contiguous()
        if boundary.numel():
            rows = scores[boundary]
            ids[boundary] = _tied_boundary(rows, values[boundary, -1:], k)
            values[boundary] = rows.gather(1, ids[boundary])
    # ids ascending, then a stable sort by score descending: ties stay in id order
    ids, by_id = ids.sort(dim=1)
    order = values.gather(1, by_id).sort(dim=1, descending=True, stable=True).indices
    return ids.gather(1, order)


def _tied_boundary(scores: torch.Tensor, kth: torch.Tensor, k: int) -> torch.Tensor:
    """(R x k) ids (ascending) of every score above the k-th best `kth`, filled up with the lowest-id
    items that score exactly `kth`."""
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(1, keepdim=True)
    keep = above | (tied & (tied.cumsum(1) <= room))
    return keep.nonzero()[:, 1].view(-1, k)


def discounts(k: int, device=None) -> torch.Tensor:
    """1 / log2(r + 1) for ranks r = 1..k."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=device))


def block_metric_sums(
    hits: torch.Tensor, n_relevant: torch.Tensor, ks: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Per-user metric values of one block of users.

    hits: (B x K_max) boolean, hits[b, r] = the item at rank r+1 is relevant for user b.
    n_relevant: (B,) number of relevant items per user (> 0).
    Returns, per K, the per-user hits, recall (|L∩T|/|T|), truncated recall (|L∩T|/min(K,|T|)), the
    denominator of micro recall (min(K,|T|)), NDCG with binary gains, hit rate (1 if any of the top K is
    relevant), precision (|L∩T|/K) and reciprocal rank (1/rank of the first relevant item in the top K, 0
    if there is none).
    """
    hits = hits.double()
    n_relevant = n_relevant.double()
    disc = discounts(hits.shape[1], hits.device)
    ideal = torch.cumsum(disc, 0)  # ideal[m-1] = IDCG with m relevant items in the list
    # 1/rank is decreasing, so its largest value over the hits is 1/(rank of the first hit)
    reciprocal = hits / torch.arange(1, hits.shape[1] + 1, dtype=hits.dtype, device=hits.device)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        hit_count = hits[:, :k].sum(1)
        capped = n_relevant.clamp(max=k)
        out[f"hits@{k}"] = hit_count
        out[f"capped@{k}"] = capped
        out[f"recall@{k}"] = hit_count / n_relevant
        out[f"recall_truncated@{k}"] = hit_count / capped
        out[f"ndcg@{k}"] = (hits[:, :k] * disc[:k]).sum(1) / ideal[capped.long() - 1]
        out[f"hit@{k}"] = (hit_count > 0).double()
        out[f"precision@{k}"] = hit_count / k
        out[f"mrr@{k}"] = reciprocal[:, :k].amax(1)
    return out


Scorer = Callable[[torch.Tensor], torch.Tensor]

CPU_BLOCK_BYTES = 16 * 2**20


def block_rows(batch_size: int, n_items: int, device: torch.device | str) -> int:
    """Users scored per block: `batch_size`, on a CPU at most what fits 16 MB of scores, so that the block's
    memory is reused from the heap (runtime.keep_freed_memory) instead of mapped and faulted in afresh
    (1,024 Gowalla users = 168 MB of scores: 0.35 s of page faults per evaluation on 2 cores)."""
    if torch.device(device).type != "cpu":
        return batch_size
    return max(1, min(batch_size, CPU_BLOCK_BYTES // (4 * max(n_items, 1))))


def dot_scorer(user_emb: torch.Tensor, item_emb: torch.Tensor) -> Scorer:
    """Scores of a block of users against every item as dot products of two embedding tables."""
    return lambda users: user_emb[users] @ item_emb.T


def rank_metrics(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    target: UserItems,
    exclude: Sequence[UserItems] = (),
    ks: Sequence[int] = (10, 20, 50),
    batch_size: int = 1024,
    per_user: bool = False,
) -> dict:
    """Mean Recall@K (standard, truncated, micro), NDCG@K, Hit@K, Precision@K and MRR@K over users with at
    least one target item.

    Scores are user_emb @ item_emb.T; items in any `exclude` set (e.g. the training items) are masked out.
    With per_user=True also returns the per-user NDCG/recall/hit/precision/MRR tensors and the evaluated
    user ids.
    """
    scorer = dot_scorer(user_emb, item_emb)
    return scored_rank_metrics(scorer, target, exclude, ks, batch_size, per_user)


def scored_rank_metrics(
    scorer: Scorer,
    target: UserItems,
    exclude: Sequence[UserItems] = (),
    ks: Sequence[int] = (10, 20, 50),
    batch_size: int = 1024,
    per_user: bool = False,
) -> dict:
    """`rank_metrics` for any model: `scorer(users)` gives the (B x n_items) scores of a block of users
    (a dot product for MF and LightGCN, user-specific item representations for KGCN)."""
    ks = sorted(set(ks))
    k_max = min(max(ks), target.n_items)
    parts: dict[str, list[torch.Tensor]] = {}
    evaluated: list[torch.Tensor] = []
    counts = target.counts()
    batch_size = block_rows(batch_size, target.n_items, counts.device)
    with torch.no_grad():
        for start in range(0, target.n_users, batch_size):
            stop = min(start + batch_size, target.n_users)
            keep = counts[start:stop] > 0
            if not keep.any():
                continue
            scores = scorer(torch.arange(start, stop, device=counts.device))
            for seen in exclude:
                rows, items = seen.block(start, stop)
                scores[rows, items] = -torch.inf
            top = top_k(scores, k_max)
            hits = target.dense_block(start, stop).gather(1, top)
            block = block_metric_sums(hits[keep], counts[start:stop][keep], ks)
            for name, values in block.items():
                parts.setdefault(name, []).append(values)
            evaluated.append(torch.arange(start, stop, device=counts.device)[keep])
    if not evaluated:
        raise ValueError("no user has a target item: nothing to evaluate")
    values = {name: torch.cat(chunks) for name, chunks in parts.items()}
    result: dict = {"users": int(sum(len(e) for e in evaluated))}
    for k in ks:
        for name in (
            f"recall@{k}",
            f"recall_truncated@{k}",
            f"ndcg@{k}",
            f"hit@{k}",
            f"precision@{k}",
            f"mrr@{k}",
        ):
            result[name] = float(values[name].mean())
        result[f"recall_micro@{k}"] = float(values[f"hits@{k}"].sum() / values[f"capped@{k}"].sum())
    if per_user:
        result["per_user"] = {"user": torch.cat(evaluated)} | {
            name: values[name]
            for name in values
            if name.startswith(("ndcg@", "recall@", "hit@", "precision@", "mrr@"))
        }
    return result
