"""Diversity and cold-start evaluation of top-K lists (RESEARCH.md §2.4, paper 1 Table 4 and Fig. 1/5).

A top-K list set is an int64 tensor (n_users x K) of item ids, best first, with distinct items in every row
(what `top_k_lists` returns). Paper 1 names inter- and intra-list diversity without giving the distances
([TODO-PDF]); the definitions here are the usual ones and are stated in each docstring. Coverage and Gini
are extras that no source of paper 1 mentions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from specrec import io
from specrec.evaluate import block_rows, top_k
from specrec.interactions import UserItems


def _check_lists(lists: torch.Tensor, min_k: int = 1) -> None:
    if lists.ndim != 2 or lists.shape[1] < min_k:
        raise ValueError(f"expected (n_users x K) lists with K >= {min_k}, got shape {tuple(lists.shape)}")
    ordered = lists.sort(dim=1).values
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise ValueError("a list repeats an item: top-K lists must hold distinct items")


def _mean_over_pairs(similarity: torch.Tensor) -> torch.Tensor:
    """(B,) mean of similarity[b, i, j] over the K(K-1)/2 pairs i < j of a (B x K x K) symmetric tensor:
    (sum of all entries - trace) / 2 over the pairs, with no copy of the upper triangle."""
    k = similarity.shape[1]
    total = similarity.sum((1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(1)
    return total / (k * (k - 1))


BLOCK_BYTES = 64 * 2**20  # the (B x K x K) float64 pair matrix of a block of lists stays under this


def lists_per_block(k: int, batch_size: int = 1024) -> int:
    """Lists per block so that a block's K x K pair matrices take at most BLOCK_BYTES, whatever K is
    (K = 1,000 over 1,024 users at once would be 8 GB)."""
    return max(1, min(batch_size, BLOCK_BYTES // (8 * k * k)))


def intra_list_diversity(
    lists: torch.Tensor, item_vectors: torch.Tensor, batch_size: int = 1024
) -> torch.Tensor:
    """(n_users,) ILD_u = 2 / (K(K-1)) sum_{i<j in L_u} (1 - cos(x_i, x_j)) (Ziegler et al., WWW'05).

    x are item vectors (e.g. synopsis sentence embeddings). Every list is gathered as (B x K x d), its rows
    normalised and the (B x K x K) cosine matrix formed with one bmm per block of users (`lists_per_block`
    bounds its memory). A zero vector has cosine 0 with everything, i.e. distance 1.
    """
    _check_lists(lists, min_k=2)
    out = []
    batch_size = lists_per_block(lists.shape[1], batch_size)
    for start in range(0, lists.shape[0], batch_size):
        vectors = F.normalize(
            torch.as_tensor(item_vectors)[lists[start : start + batch_size]].double(), dim=2
        )
        out.append(1.0 - _mean_over_pairs(torch.bmm(vectors, vectors.transpose(1, 2))))
    return torch.cat(out)


def genre_intra_list_diversity(
    lists: torch.Tensor, item_genres: torch.Tensor, batch_size: int = 1024
) -> torch.Tensor:
    """(n_users,) mean pairwise Jaccard distance 1 - |G_i ∩ G_j| / |G_i ∪ G_j| of the genre sets in a list.

    item_genres: (n_items x n_genres) bool (dense or sparse). Intersections come from one bmm of the 0/1
    genre rows; |G_i ∪ G_j| = |G_i| + |G_j| - |G_i ∩ G_j|. Two items that both lack genres have an empty
    union: their similarity is taken as 0 (distance 1), the same as for an item with genres next to one
    without, because nothing is known that they share.
    """
    _check_lists(lists, min_k=2)
    genres = item_genres.to_dense() if item_genres.is_sparse else item_genres
    out = []
    batch_size = lists_per_block(lists.shape[1], batch_size)
    for start in range(0, lists.shape[0], batch_size):
        rows = genres[lists[start : start + batch_size]].double()  # (B x K x G)
        inter = torch.bmm(rows, rows.transpose(1, 2))
        size = rows.sum(2)
        union = size.unsqueeze(2) + size.unsqueeze(1) - inter
        jaccard = torch.where(union > 0, inter / union.clamp_min(1.0), torch.zeros_like(inter))
        out.append(1.0 - _mean_over_pairs(jaccard))
    return torch.cat(out)


def item_counts(lists: torch.Tensor, n_items: int) -> torch.Tensor:
    """(n_items,) c_i = number of lists that contain item i."""
    return torch.bincount(lists.flatten(), minlength=n_items)


def inter_list_diversity(lists: torch.Tensor, n_items: int) -> float:
    """1 - mean_{u != v} |L_u ∩ L_v| / K over ordered pairs of distinct users.

    The U x U overlap matrix is never built: an item in c_i lists lies in c_i (c_i - 1) ordered pairs of
    distinct lists, so sum_{u != v} |L_u ∩ L_v| = sum_i c_i (c_i - 1) exactly (lists hold distinct items),
    and the mean is that sum over K U (U - 1). O(U K) time and O(n_items) memory.
    """
    _check_lists(lists)
    n_users, k = lists.shape
    if n_users < 2:
        raise ValueError("inter-list diversity needs at least two lists")
    counts = item_counts(lists, n_items).double()
    return float(1.0 - (counts * (counts - 1)).sum() / (k * n_users * (n_users - 1)))


def coverage(lists: torch.Tensor, n_items: int) -> float:
    """Catalogue coverage: |∪_u L_u| / n_items, the share of items recommended to at least one user."""
    return float((item_counts(lists, n_items) > 0).sum() / n_items)


def gini(lists: torch.Tensor, n_items: int) -> float:
    """Gini index of the recommendation counts c_i over all catalogue items (zeros included).

    G = sum_{r=1..n} (2r - n - 1) c_(r) / (n sum_i c_i), with c_(1) <= ... <= c_(n) sorted ascending
    (the sorted-cumulative form of the mean absolute difference). 0 when every item is recommended equally
    often; (n - 1) / n, its maximum, when a single item takes every slot.
    """
    counts = item_counts(lists, n_items).double().sort().values
    rank = torch.arange(1, n_items + 1, dtype=torch.float64, device=counts.device)
    return float(((2 * rank - n_items - 1) * counts).sum() / (n_items * counts.sum()))


def top_k_lists_scored(
    score_block: Callable[[torch.Tensor], torch.Tensor],
    users: torch.Tensor,
    exclude: Sequence[UserItems],
    k: int,
    batch_size: int = 1024,
) -> torch.Tensor:
    """(len(users) x k) top-k item ids of `users`, best first, from any scorer.

    score_block(block of user ids) -> (B x n_items) scores, so models that are not a dot product (KGCN)
    rank the same way. Items in any `exclude` set get -inf, as in `evaluate.rank_metrics`. A user left
    with fewer than k candidates raises, rather than silently listing excluded items.
    """
    out = []
    # the score width is the item count of the exclusion sets; without them it is unknown, and not capped
    batch_size = block_rows(batch_size, exclude[0].n_items if exclude else 1, users.device)
    with torch.no_grad():
        for start in range(0, users.numel(), batch_size):
            block = users[start : start + batch_size]
            scores = score_block(block).clone()  # the scorer may return a view of a cached matrix
            for seen in exclude:
                rows, items = seen.rows(block)
                scores[rows, items] = -torch.inf
            top = top_k(scores, k)
            if torch.isneginf(scores.gather(1, top[:, -1:])).any():
                raise ValueError(f"a user has fewer than k={k} items left after exclusion")
            out.append(top)
    return torch.cat(out) if out else torch.empty(0, k, dtype=torch.long)


def top_k_lists(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    exclude: Sequence[UserItems],
    k: int,
    batch_size: int = 1024,
    users: torch.Tensor | None = None,
) -> torch.Tensor:
    """(n x k) top-k lists of dot-product scores user_emb[u] @ item_emb.T (all users unless `users`)."""
    if users is None:
        users = torch.arange(user_emb.shape[0], device=user_emb.device)
    return top_k_lists_scored(lambda block: user_emb[block] @ item_emb.T, users, exclude, k, batch_size)


def activity_bins(
    train_counts: torch.Tensor,
    quantiles: Sequence[float] = (0.25, 0.5, 0.75),
    bottom: float = 0.01,
) -> tuple[torch.Tensor, list[str]]:
    """Bin users by their number of training interactions: (bin_of_user (n_users,) int64, labels).

    Bin 0 is the cold-start group of paper 1: the ceil(bottom * n) least active users, exactly that many;
    users tied on the boundary count are taken in ascending user id (a stable sort), so the group is
    deterministic. The remaining users are split at the given quantiles of their counts (thresholds are
    observed counts, `torch.quantile(..., interpolation="lower")`, duplicates dropped): bin j holds the
    users with t_{j-1} < count <= t_j. Labels give the range of counts in each bin, e.g.
    "bottom 1% (16–21)", "21–44", ...; a bin that ends up empty is dropped and the bins renumbered.
    """
    counts = train_counts.long()
    n_users = counts.numel()
    # the tolerance keeps e.g. 0.01 * 700 = 7.000000000000001 from rounding up to 8
    n_bottom = min(n_users, max(1, math.ceil(bottom * n_users - 1e-9)))
    order = torch.sort(counts, stable=True).indices
    is_bottom = torch.zeros(n_users, dtype=torch.bool, device=counts.device)
    is_bottom[order[:n_bottom]] = True
    rest = counts[~is_bottom]
    thresholds = torch.tensor([], dtype=torch.long, device=counts.device)
    if rest.numel():
        probs = torch.tensor(list(quantiles), dtype=torch.float64, device=counts.device)
        thresholds = torch.unique(torch.quantile(rest.double(), probs, interpolation="lower")).long()
    bins = torch.where(is_bottom, 0, 1 + torch.searchsorted(thresholds, counts, right=False))
    # drop empty bins (e.g. a last quantile equal to the largest count) and renumber
    present = torch.unique(bins)
    bins = torch.searchsorted(present, bins)
    labels = []
    for position in range(present.numel()):
        members = counts[bins == position]
        span = f"{int(members.min())}–{int(members.max())}"
        labels.append(f"bottom {100 * bottom:g}% ({span})" if int(present[position]) == 0 else span)
    return bins, labels


def per_bin(
    values: dict[str, torch.Tensor],
    users: torch.Tensor,
    bin_of_user: torch.Tensor,
    labels: Sequence[str],
) -> pd.DataFrame:
    """One row per activity bin: label, number of evaluated users in it, and the mean of every metric.

    values[name][j] is the metric of user users[j] (e.g. `rank_metrics(..., per_user=True)["per_user"]`;
    its "user" entry, the ids themselves, is skipped). Means are bin sums / bin sizes (bincount with
    weights); a bin without evaluated users gets NaN.
    """
    bins = bin_of_user[users.long()]
    n_bins = len(labels)
    sizes = torch.bincount(bins, minlength=n_bins).double()
    table = {"bin": list(labels), "n_users": sizes.long().tolist()}
    for name, metric in values.items():
        if name == "user":
            continue
        sums = torch.bincount(bins, weights=metric.double(), minlength=n_bins)
        table[name] = (sums / sizes).tolist()  # 0 / 0 = NaN for an empty bin
    return pd.DataFrame(table)


def genre_matrix(items: pd.DataFrame) -> torch.Tensor:
    """(n_items x n_genres) bool incidence of the items' genre lists (rows in item-id order)."""
    items = items.sort_values("item")
    exploded = items[["item", "genres"]].explode("genres").dropna()
    codes, _ = pd.factorize(exploded["genres"], sort=True)
    matrix = torch.zeros(len(items), max(int(codes.max(initial=-1)) + 1, 1), dtype=torch.bool)
    matrix[torch.tensor(exploded["item"].to_numpy(dtype=np.int64)), torch.tensor(codes)] = True
    return matrix


def list_diversity(
    lists: torch.Tensor, n_items: int, genres: torch.Tensor, text: torch.Tensor | None, ks: Sequence[int]
) -> dict:
    """Every diversity measure of the top-K lists for each K in `ks` (the first K items of each list)."""
    out = {}
    for k in sorted(set(ks)):
        top = lists[:, :k]
        row = {
            "ild_genre": float(genre_intra_list_diversity(top, genres).mean()),
            "inter_list": inter_list_diversity(top, n_items),
            "coverage": coverage(top, n_items),
            "gini": gini(top, n_items),
        }
        if text is not None:
            row["ild_text"] = float(intra_list_diversity(top, text).mean())
        out[str(k)] = row
    return out


def analyse_run(
    top_lists: Path,
    per_user: Path,
    item_meta: Path,
    train: Path,
    text_embeddings: Path | None,
    ks: Sequence[int],
    diversity_out: Path,
    activity_out: Path,
) -> tuple[dict, pd.DataFrame]:
    """A run's diversity (diversity.json: per K, genre and synopsis ILD, inter-list diversity, coverage,
    Gini) and its per-user test metrics by training activity (activity.csv: the bottom-1 % cold-start bin,
    then quartile bins), from the files the training job wrote."""
    items = pd.read_parquet(item_meta)
    with np.load(top_lists) as arrays:
        lists = torch.as_tensor(arrays["items"]).long()
    text = None if text_embeddings is None else torch.from_numpy(np.load(text_embeddings))
    ks = [k for k in ks if 2 <= k <= lists.shape[1]]
    diversity = list_diversity(lists, len(items), genre_matrix(items), text, ks)
    train_users = pd.read_parquet(train, columns=["user"])["user"].to_numpy()
    scores = pd.read_parquet(per_user)
    n_users = max(int(train_users.max()), int(scores["user"].max())) + 1
    counts = torch.as_tensor(np.bincount(train_users, minlength=n_users))
    bins, labels = activity_bins(counts)
    # copies: a parquet column's array is read-only, and torch warns when it wraps one
    values = {name: torch.as_tensor(scores[name].to_numpy(copy=True)) for name in scores.columns}
    activity = per_bin(values, values["user"], bins, labels)
    io.write_json(diversity_out, diversity)
    io.write_csv(activity_out, activity)
    return diversity, activity
