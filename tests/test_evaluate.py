import math

import numpy as np
import pytest
import torch

from specrec.evaluate import block_metric_sums, rank_metrics, top_k
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
    # first hit at rank 2 for both K; 1 of 2 and 2 of 5 listed items are relevant
    assert m["hit@2"] == 1.0 and m["hit@5"] == 1.0
    assert m["mrr@2"] == pytest.approx(0.5) and m["mrr@5"] == pytest.approx(0.5)
    assert m["precision@2"] == pytest.approx(0.5) and m["precision@5"] == pytest.approx(0.4)


def test_excluded_items_are_masked():
    items = one_hot_scores([2, 0, 4, 1, 3], 5)
    target = UserItems.from_pairs([0, 0], [0, 3], n_users=1, n_items=5)
    seen = UserItems.from_pairs([0], [2], n_users=1, n_items=5)
    m = rank_metrics(torch.ones(1, 1), items, target, exclude=[seen], ks=[2])
    # ranking becomes [0, 4, 1, 3]: hit at rank 1
    assert m["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["mrr@2"] == pytest.approx(1.0) and m["hit@2"] == 1.0 and m["precision@2"] == pytest.approx(0.5)


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


def test_hit_precision_mrr_hand_computed():
    # every user ranks the items [0, 1, 2, 3, 4, 5]; the targets put the first hit at ranks 1, 3, none, 2
    items = one_hot_scores([0, 1, 2, 3, 4, 5], 6)
    target = UserItems.from_pairs([0, 1, 1, 2, 3, 3], [0, 2, 4, 5, 1, 2], n_users=4, n_items=6)
    m = rank_metrics(torch.ones(4, 1), items, target, ks=[1, 3], batch_size=3, per_user=True)
    # K=1: only user 0 has a hit
    assert m["hit@1"] == pytest.approx(1 / 4)
    assert m["precision@1"] == pytest.approx(1 / 4)
    assert m["mrr@1"] == pytest.approx(1 / 4)
    # K=3: top-3 = [0, 1, 2]; hits 1, 1, 0, 2; first-hit ranks 1, 3, -, 2
    assert m["hit@3"] == pytest.approx(3 / 4)
    assert m["precision@3"] == pytest.approx((1 / 3 + 1 / 3 + 0 + 2 / 3) / 4)
    assert m["mrr@3"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    per_user = m["per_user"]
    assert per_user["user"].tolist() == [0, 1, 2, 3]
    assert per_user["mrr@3"].tolist() == pytest.approx([1, 1 / 3, 0, 1 / 2])
    assert per_user["hit@3"].tolist() == [1, 1, 0, 1]
    assert per_user["precision@1"].tolist() == [1, 0, 0, 0]


def test_block_metric_sums_hit_precision_mrr():
    hits = torch.tensor(
        [
            [False, False, True, True],  # first hit at rank 3
            [False, False, False, False],  # no hit
            [True, False, True, False],  # first hit at rank 1
        ]
    )
    out = block_metric_sums(hits, torch.tensor([2, 1, 5]), ks=[2, 4])
    assert out["hit@2"].tolist() == [0, 0, 1]
    assert out["hit@4"].tolist() == [1, 0, 1]
    assert out["precision@2"].tolist() == pytest.approx([0, 0, 1 / 2])
    assert out["precision@4"].tolist() == pytest.approx([2 / 4, 0, 2 / 4])
    assert out["mrr@2"].tolist() == pytest.approx([0, 0, 1])
    assert out["mrr@4"].tolist() == pytest.approx([1 / 3, 0, 1])


def test_precision_divides_by_k_even_when_fewer_items_than_k():
    # 3 items, K=5: the list holds all 3 items, 2 of them relevant -> precision 2/5, first hit at rank 2
    items = one_hot_scores([0, 1, 2], 3)
    target = UserItems.from_pairs([0, 0], [1, 2], n_users=1, n_items=3)
    m = rank_metrics(torch.ones(1, 1), items, target, ks=[5])
    assert m["precision@5"] == pytest.approx(2 / 5)
    assert m["hit@5"] == 1.0 and m["mrr@5"] == pytest.approx(0.5) and m["recall@5"] == pytest.approx(1.0)


def test_perfect_and_worst_rankings_bound_the_metrics():
    n = 50
    target = UserItems.from_pairs([0] * 5, [0, 1, 2, 3, 4], n_users=1, n_items=n)
    best = rank_metrics(torch.ones(1, 1), one_hot_scores(list(range(n)), n), target, ks=[5])
    worst = rank_metrics(torch.ones(1, 1), one_hot_scores(list(range(n))[::-1], n), target, ks=[5])
    assert best["ndcg@5"] == pytest.approx(1.0) and best["recall@5"] == pytest.approx(1.0)
    assert worst["ndcg@5"] == 0.0 and worst["recall@5"] == 0.0
    assert best["hit@5"] == 1.0 and best["precision@5"] == pytest.approx(1.0) and best["mrr@5"] == 1.0
    assert worst["hit@5"] == 0.0 and worst["precision@5"] == 0.0 and worst["mrr@5"] == 0.0


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_metrics_equal_cpu_metrics():
    generator = torch.Generator().manual_seed(0)
    users, items = torch.randn(300, 16, generator=generator), torch.randn(400, 16, generator=generator)
    pairs = torch.randint(0, 400, (2, 3000), generator=generator)
    seen = UserItems.from_pairs(pairs[0] % 300, pairs[1], n_users=300, n_items=400)
    target = UserItems.from_pairs(torch.arange(300).repeat(3), pairs[1, :900], n_users=300, n_items=400)
    cpu = rank_metrics(users, items, target, [seen], ks=[5, 20], batch_size=64)
    gpu = rank_metrics(users.cuda(), items.cuda(), target.to("cuda"), [seen.to("cuda")], ks=[5, 20])
    assert gpu == pytest.approx(cpu)


def test_contains_by_bitmap_and_by_binary_search_agree(monkeypatch):
    import specrec.interactions as interactions

    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 50, 400), rng.integers(0, 70, 400)
    qu, qi = torch.from_numpy(rng.integers(0, 50, 5000)), torch.from_numpy(rng.integers(0, 70, 5000))
    by_bitmap = UserItems.from_pairs(users, items, n_users=50, n_items=70)
    assert by_bitmap.bitmap is not None
    monkeypatch.setattr(interactions, "BITMAP_LIMIT_BITS", 0)
    by_search = UserItems.from_pairs(users, items, n_users=50, n_items=70)
    assert by_search.bitmap is None
    expected = {(int(u), int(i)) for u, i in zip(users, items, strict=True)}
    truth = [(int(u), int(i)) in expected for u, i in zip(qu, qi, strict=True)]
    assert by_bitmap.contains(qu, qi).tolist() == by_search.contains(qu, qi).tolist() == truth


def reference_top_k(scores: torch.Tensor, k: int) -> list[list[int]]:
    """The documented order, one row at a time: score descending, then item id ascending."""
    return [
        sorted(range(len(row)), key=lambda item: (-row[item], item))[:k] for row in scores.double().tolist()
    ]


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_top_k_breaks_ties_by_lowest_item_id(k):
    generator = torch.Generator().manual_seed(0)
    # few distinct values: most rows tie across the k-th place, and inside the list
    scores = torch.randint(0, 4, (64, 12), generator=generator).float()
    scores[0] = 1.0  # a row of one value
    scores[1, ::2] = -torch.inf  # masked items tie too
    assert top_k(scores, k).tolist() == reference_top_k(scores, k)


def test_top_k_of_popularity_like_counts():
    """Item counts with ties across the cut: the tied items with the lowest ids get in, in id order."""
    counts = torch.tensor([[5.0, 3, 5, 3, 3, 1, 5, 3]])
    assert top_k(counts, 5).tolist() == [[0, 2, 6, 1, 3]]


def test_top_k_ranks_nan_last_and_refuses_k_above_the_item_count():
    scores = torch.tensor([[0.5, float("nan"), 0.9, 0.1]])
    assert top_k(scores, 3).tolist() == [[2, 0, 3]]
    with pytest.raises(ValueError, match="larger than the number of items"):
        top_k(scores, 5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_top_k_is_the_same_on_cuda():
    generator = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 5, (300, 2000), generator=generator).float()
    assert torch.equal(top_k(scores.cuda(), 20).cpu(), top_k(scores, 20))


def test_tie_order_does_not_move_the_metrics():
    """All items score the same: the list is items 0..k-1, whichever way the kernel would return ties."""
    items = torch.ones(6, 1)
    target = UserItems.from_pairs([0, 0], [0, 5], n_users=1, n_items=6)
    m = rank_metrics(torch.ones(1, 1), items, target, ks=[2])
    assert m["recall@2"] == pytest.approx(0.5) and m["mrr@2"] == pytest.approx(1.0)
