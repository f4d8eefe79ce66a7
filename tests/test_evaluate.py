import math

import pytest
import torch

from specrec.evaluate import rank_metrics
from specrec.interactions import UserItems


def one_hot_scores(order: list[int], n_items: int) -> torch.Tensor:
    """Item embeddings (n_items x 1) and a user of 1 whose ranking is exactly `order`."""
    scores = torch.zeros(n_items, 1)
    for rank, item in enumerate(order):
        scores[item, 0] = float(n_items - rank)
    return scores


def test_single_user_hand_computed():
    items = one_hot_scores([2, 0, 4, 1, 3], 5)
    users = torch.ones(1, 1)
    target = UserItems.from_pairs([0, 0], [0, 3], n_users=1, n_items=5)
    m = rank_metrics(users, items, target, ks=[2, 5])
    # top-2 = [2, 0]: one hit at rank 2
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["recall_truncated@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    # top-5 = everything: hits at ranks 2 and 5
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    assert m["recall@5"] == pytest.approx(1.0)
    assert m["ndcg@5"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))


def test_excluded_items_are_masked():
    items = one_hot_scores([2, 0, 4, 1, 3], 5)
    target = UserItems.from_pairs([0, 0], [0, 3], n_users=1, n_items=5)
    seen = UserItems.from_pairs([0], [2], n_users=1, n_items=5)
    m = rank_metrics(torch.ones(1, 1), items, target, exclude=[seen], ks=[2])
    # ranking becomes [0, 4, 1, 3]: hit at rank 1
    assert m["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m["recall@2"] == pytest.approx(0.5)


def test_recall_variants_and_users_without_targets():
    # three users; user 1 has no target and must be ignored; both others rank items [0, 1, 2, 3, 4]
    items = one_hot_scores([0, 1, 2, 3, 4], 5)
    users = torch.ones(3, 1)
    target = UserItems.from_pairs([0, 2, 2, 2], [0, 1, 3, 4], n_users=3, n_items=5)
    m = rank_metrics(users, items, target, ks=[2], batch_size=2)
    assert m["users"] == 2
    # user 0: 1 hit of 1 relevant; user 2: 1 hit (item 1) of 3 relevant
    assert m["recall@2"] == pytest.approx((1 + 1 / 3) / 2)
    assert m["recall_truncated@2"] == pytest.approx((1 + 1 / 2) / 2)
    assert m["recall_micro@2"] == pytest.approx((1 + 1) / (1 + 2))
    ndcg_user2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@2"] == pytest.approx((1 + ndcg_user2) / 2)


def test_perfect_and_worst_rankings_bound_the_metrics():
    n = 50
    target = UserItems.from_pairs([0] * 5, [0, 1, 2, 3, 4], n_users=1, n_items=n)
    best = rank_metrics(torch.ones(1, 1), one_hot_scores(list(range(n)), n), target, ks=[5])
    worst = rank_metrics(torch.ones(1, 1), one_hot_scores(list(range(n))[::-1], n), target, ks=[5])
    assert best["ndcg@5"] == pytest.approx(1.0) and best["recall@5"] == pytest.approx(1.0)
    assert worst["ndcg@5"] == 0.0 and worst["recall@5"] == 0.0


def test_contains_matches_python_sets():
    generator = torch.Generator().manual_seed(0)
    users = torch.randint(0, 20, (300,), generator=generator)
    items = torch.randint(0, 30, (300,), generator=generator)
    index = UserItems.from_pairs(users.numpy(), items.numpy(), n_users=20, n_items=30)
    truth = set(zip(users.tolist(), items.tolist(), strict=True))
    qu = torch.randint(0, 20, (500,), generator=generator)
    qi = torch.randint(0, 30, (500,), generator=generator)
    expected = [(u, i) in truth for u, i in zip(qu.tolist(), qi.tolist(), strict=True)]
    assert index.contains(qu, qi).tolist() == expected
