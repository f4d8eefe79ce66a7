"""Click-through-rate (CTR) evaluation of KGCN (RESEARCH.md §2.4): AUC and F1 on labelled test rows.

KGCN (Wang et al., WWW'19, `hwwang55/KGCN` code) turns implicit feedback into labelled rows: every positive
(user, item) gets label 1, and for every positive one item the user never interacted with is drawn
uniformly as a label-0 row. The model outputs a logit per row; AUC is computed on the raw scores and F1 on
the thresholded probabilities sigmoid(score) >= 0.5, exactly as the KGCN code does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from specrec.interactions import UserItems


def _excluded(sets: Sequence[UserItems], users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """(n,) bool: is (users[j], items[j]) in any of `sets`?"""
    hit = torch.zeros_like(users, dtype=torch.bool)
    for known in sets:
        hit |= known.contains(users, items)
    return hit


def _excluded_counts(sets: Sequence[UserItems], n_users: int) -> torch.Tensor:
    """(n_users,) number of distinct items of each user in the union of `sets` (keys deduplicated)."""
    n_items = sets[0].n_items
    keys = torch.unique(torch.cat([known.keys for known in sets]))
    return torch.bincount(torch.div(keys, n_items, rounding_mode="floor"), minlength=n_users)[:n_users]


def ctr_rows(
    positives: UserItems,
    seen: Sequence[UserItems],
    generator: torch.Generator,
    max_rounds: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The KGCN CTR rows: every positive (label 1) plus one uniform negative per positive (label 0).

    The negative of a positive (u, i) is drawn uniformly from the items u has in none of `seen` nor in
    `positives` itself (so a row can never carry both labels), by rejection: draw for every row at once,
    then re-draw only the rows that clash, until none does. The draws depend only on the inputs and the
    generator, so the rows are reproducible. Returns (users, items, labels) as int64 tensors, the positives
    first in the CSR order of `positives`, then their negatives in the same order.
    """
    sets = (positives, *seen)
    if any(known.n_items != positives.n_items for known in sets):
        raise ValueError("all interaction sets must share the same number of items")
    users, items = positives.pairs()
    # Fail up front rather than loop forever on a user who has seen the whole catalogue.
    full = _excluded_counts(sets, positives.n_users)[users] >= positives.n_items
    if full.any():
        raise ValueError(f"user {int(users[full][0])} has no unseen item to draw a negative from")
    n_items, device = positives.n_items, users.device
    negatives = torch.randint(n_items, users.shape, generator=generator, device=device)
    clash = _excluded(sets, users, negatives)
    for _ in range(max_rounds):
        if not clash.any():
            break
        redraw = torch.randint(n_items, (int(clash.sum()),), generator=generator, device=device)
        negatives[clash] = redraw
        clash[clash.clone()] = _excluded(sets, users[clash], redraw)
    else:
        if clash.any():
            raise RuntimeError(f"negatives still clash after {max_rounds} rejection rounds")
    labels = torch.cat([torch.ones_like(users), torch.zeros_like(users)])
    return torch.cat([users, users]), torch.cat([items, negatives]), labels


def _average_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of `scores` in ascending order, tied scores sharing the mean of their ranks."""
    order = torch.argsort(scores)
    _, inverse, counts = torch.unique_consecutive(scores[order], return_inverse=True, return_counts=True)
    last = torch.cumsum(counts, 0).double()  # rank of the last member of every tie group
    mean_rank = last - (counts.double() - 1) / 2  # mean of first..last = last - (count - 1) / 2
    ranks = torch.empty_like(scores, dtype=torch.float64)
    ranks[order] = mean_rank[inverse]
    return ranks


def auc(scores, labels) -> float:
    """ROC AUC by the Mann-Whitney U statistic.

    AUC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-), with R_+ the sum of the ranks of the positive rows among all
    scores (ascending, ties given their average rank). This equals P(score_pos > score_neg) + 1/2
    P(score_pos = score_neg), the area under the ROC curve with ties counted half (as scikit-learn's
    roc_auc_score does). Labels are 0/1 (anything non-zero counts as positive).
    """
    scores = torch.as_tensor(scores).flatten().double()
    positive = torch.as_tensor(labels, device=scores.device).flatten() != 0
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative rows")
    rank_sum = _average_ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def f1(scores, labels, threshold: float = 0.5) -> float:
    """F1 = 2 TP / (2 TP + FP + FN) of the predictions sigmoid(score) >= threshold.

    `scores` are logits (the model's pre-sigmoid outputs), thresholded after the sigmoid as in the KGCN
    code. Returns 0 when there is neither a positive label nor a positive prediction (scikit-learn's
    zero_division=0 convention).
    """
    predicted = torch.sigmoid(torch.as_tensor(scores).flatten().double()) >= threshold
    actual = torch.as_tensor(labels, device=predicted.device).flatten() != 0
    true_pos = int((predicted & actual).sum())
    wrong = int((predicted != actual).sum())  # FP + FN
    return 2 * true_pos / (2 * true_pos + wrong) if true_pos + wrong else 0.0


def ctr_metrics(scores, labels) -> dict[str, float]:
    """{"auc": ..., "f1": ...} of logits `scores` against 0/1 `labels`."""
    return {"auc": auc(scores, labels), "f1": f1(scores, labels)}


def batched_ctr_metrics(scores, labels, batch_size: int, generator: torch.Generator) -> dict[str, float]:
    """KGCN's reported AUC and F1: the mean over fixed-size batches of the test rows, the last incomplete
    batch dropped (its `ctr_eval` loop runs while start + batch_size <= n).

    KGCN's test rows come in random order (its split draws them at random); ours are built positives
    first, so they are shuffled once with `generator` before batching. A batch holding a single label has no
    AUC and is left out of both means (`batches` counts the batches averaged).
    """
    scores = torch.as_tensor(scores).flatten()
    labels = torch.as_tensor(labels, device=scores.device).flatten()
    n_batches = scores.numel() // batch_size
    if n_batches == 0:
        raise ValueError(f"ctr_batch_size {batch_size} is larger than the {scores.numel()} CTR test rows")
    order = torch.randperm(scores.numel(), generator=generator, device=scores.device)
    order = order[: n_batches * batch_size]
    results = [
        ctr_metrics(batch_scores, batch_labels)
        for batch_scores, batch_labels in zip(
            scores[order].split(batch_size), labels[order].split(batch_size), strict=True
        )
        if 0 < int(batch_labels.count_nonzero()) < batch_size
    ]
    if not results:
        raise ValueError("every CTR test batch holds a single label: no AUC")
    return {
        "auc": sum(r["auc"] for r in results) / len(results),
        "f1": sum(r["f1"] for r in results) / len(results),
        "batch_size": batch_size,
        "batches": len(results),
    }
