import math

import pytest
import torch

from specrec.ctr import auc, batched_ctr_metrics, ctr_metrics, ctr_rows, f1
from specrec.interactions import UserItems


def pairwise_auc(scores, labels) -> float:
    """Direct definition: share of (positive, negative) pairs ranked correctly, ties counted half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_hand_computed():
    # scikit-learn's documentation example: 3 of the 4 (pos, neg) pairs are ordered correctly
    assert auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.75)
    # ties: positives {1, 2} vs negatives {1, 0}; the 1-vs-1 pair counts half -> 3.5 / 4
    assert auc([1.0, 1.0, 2.0, 0.0], [1, 0, 1, 0]) == pytest.approx(0.875)
    # all scores equal -> every pair is a tie
    assert auc([3.0] * 5, [1, 0, 0, 1, 0]) == pytest.approx(0.5)


def test_auc_with_many_ties_matches_pairwise_reference_and_sklearn():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 4, (200,), generator=generator).double()  # four values: heavy ties
    labels = torch.randint(0, 2, (200,), generator=generator)
    expected = pairwise_auc(scores.tolist(), labels.tolist())
    assert auc(scores, labels) == pytest.approx(expected, abs=1e-12)
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)
    continuous = torch.randn(300, generator=generator)
    labels = torch.randint(0, 2, (300,), generator=generator)
    assert auc(continuous, labels) == pytest.approx(roc_auc_score(labels.numpy(), continuous.numpy()))


def test_auc_needs_both_classes():
    with pytest.raises(ValueError):
        auc([0.1, 0.2], [1, 1])


def test_f1_hand_computed_on_logits():
    logits = torch.tensor([2.0, -1.0, 0.0, 0.5, -3.0])
    labels = torch.tensor([1, 1, 0, 0, 1])
    # sigmoid: 0.88, 0.27, 0.5 (>= 0.5 counts as positive), 0.62, 0.05 -> predicted 1, 0, 1, 1, 0
    # TP = 1, FP = 2, FN = 2 -> F1 = 2 / (2 + 4)
    assert f1(logits, labels) == pytest.approx(1 / 3)
    # threshold 0.7: only row 0 predicted positive -> TP = 1, FP = 0, FN = 2
    assert f1(logits, labels, threshold=0.7) == pytest.approx(0.5)
    assert f1(torch.tensor([-1.0, -2.0]), torch.tensor([0, 0])) == 0.0
    metrics = ctr_metrics(logits, labels)
    assert metrics == {"auc": pytest.approx(auc(logits, labels)), "f1": pytest.approx(1 / 3)}
    # AUC uses the raw logits: positives 2, -1, -3 vs negatives 0, 0.5 -> 2 of 6 pairs correct
    assert metrics["auc"] == pytest.approx(2 / 6)


def tiny_sets():
    # 6 items. User 0 likes {0, 1} and trained on {2, 3}: negatives from {4, 5}.
    # User 1 likes {2} and trained on {0, 1, 3, 4}: the only possible negative is 5.
    positives = UserItems.from_pairs([0, 0, 1], [0, 1, 2], n_users=2, n_items=6)
    train = UserItems.from_pairs([0, 0, 1, 1, 1, 1], [2, 3, 0, 1, 3, 4], n_users=2, n_items=6)
    return positives, train


def test_ctr_rows_pair_every_positive_with_an_unseen_negative():
    positives, train = tiny_sets()
    users, items, labels = ctr_rows(positives, [train], torch.Generator().manual_seed(0))
    assert users.tolist()[:3] == [0, 0, 1] and items.tolist()[:3] == [0, 1, 2]
    assert labels.tolist() == [1, 1, 1, 0, 0, 0]
    assert users.tolist()[3:] == [0, 0, 1]
    assert set(items[3:5].tolist()) <= {4, 5} and items[5].item() == 5


def test_ctr_rows_are_uniform_over_allowed_items_and_reproducible():
    # user 0 has 200 positives among 400 items and trained on 100 others: 100 items allowed
    positives = UserItems.from_pairs([0] * 200, list(range(200)), n_users=1, n_items=400)
    train = UserItems.from_pairs([0] * 100, list(range(200, 300)), n_users=1, n_items=400)
    first = ctr_rows(positives, [train], torch.Generator().manual_seed(7))
    again = ctr_rows(positives, [train], torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    negatives = first[1][first[2] == 0]
    assert bool(((negatives >= 300) & (negatives < 400)).all())
    assert len(set(negatives.tolist())) > 50  # not stuck on a few items: 200 uniform draws over 100


def test_ctr_rows_refuse_a_user_without_unseen_items():
    positives = UserItems.from_pairs([0, 1], [0, 1], n_users=2, n_items=3)
    train = UserItems.from_pairs([1, 1], [0, 2], n_users=2, n_items=3)
    with pytest.raises(ValueError, match="user 1"):
        ctr_rows(positives, [train], torch.Generator().manual_seed(0))


def test_sigmoid_threshold_is_on_probabilities():
    # logit log(3) -> probability 0.75: positive at threshold 0.7, negative at 0.8
    logit = torch.tensor([math.log(3.0)])
    assert f1(logit, torch.tensor([1]), threshold=0.7) == 1.0
    assert f1(logit, torch.tensor([1]), threshold=0.8) == 0.0


def test_batched_ctr_metrics_follow_kgcns_eval_loop():
    """KGCN's ctr_eval: while start + batch_size <= n, AUC and F1 of rows [start, start + batch_size);
    the mean of the per-batch values. Our rows are shuffled first (KGCN's come in random order)."""
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(1000, generator=generator, dtype=torch.float64)
    labels = (torch.rand(1000, generator=generator) < 0.5).long()
    result = batched_ctr_metrics(scores, labels, 128, torch.Generator().manual_seed(7))
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(7))
    s, y = scores[order].tolist(), labels[order].tolist()
    aucs, f1s, start = [], [], 0
    while start + 128 <= len(s):
        aucs.append(pairwise_auc(s[start : start + 128], y[start : start + 128]))
        f1s.append(f1(s[start : start + 128], y[start : start + 128]))
        start += 128
    assert result["batches"] == 7 == len(aucs)  # 1000 // 128: the last 104 rows are dropped
    assert result["auc"] == pytest.approx(sum(aucs) / len(aucs))
    assert result["f1"] == pytest.approx(sum(f1s) / len(f1s))
    with pytest.raises(ValueError, match="larger than the 1000 CTR test rows"):
        batched_ctr_metrics(scores, labels, 2000, generator)
