import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch

from specrec.diversity import (
    activity_bins,
    analyse_run,
    coverage,
    genre_intra_list_diversity,
    genre_matrix,
    gini,
    inter_list_diversity,
    intra_list_diversity,
    per_bin,
    top_k_lists,
    top_k_lists_scored,
)
from specrec.evaluate import rank_metrics
from specrec.interactions import UserItems


def random_lists(n_users: int, k: int, n_items: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n_items, generator=generator)[:k] for _ in range(n_users)])


# --- intra-list diversity ---------------------------------------------------------------------------------


def test_intra_list_diversity_hand_computed():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 5.0], [2.0, 2.0], [-3.0, 0.0]])
    lists = torch.tensor([[0, 1, 2], [0, 3, 1]])
    # list 0: cos(0,1) = 0, cos(0,2) = cos(1,2) = 1/sqrt2 -> distances 1, 1 - 1/sqrt2, 1 - 1/sqrt2
    # list 1: cos(0,3) = -1, cos(0,1) = cos(3,1) = 0 -> distances 2, 1, 1
    expected = [(3 - math.sqrt(2)) / 3, 4 / 3]
    assert intra_list_diversity(lists, vectors).tolist() == pytest.approx(expected)


def test_intra_list_diversity_matches_double_loop():
    vectors = torch.randn(30, 5, generator=torch.Generator().manual_seed(1)).double()
    lists = random_lists(7, 4, 30, seed=2)
    expected = []
    for row in lists.tolist():
        distances = [
            1 - torch.cosine_similarity(vectors[i], vectors[j], dim=0).item() for i, j in combinations(row, 2)
        ]
        expected.append(sum(distances) / len(distances))
    assert intra_list_diversity(lists, vectors, batch_size=3).tolist() == pytest.approx(expected)


def test_intra_list_diversity_rejects_repeated_items_and_single_item_lists():
    vectors = torch.eye(3)
    with pytest.raises(ValueError):
        intra_list_diversity(torch.tensor([[0, 1, 0]]), vectors)
    with pytest.raises(ValueError):
        intra_list_diversity(torch.tensor([[0], [1]]), vectors)


def test_genre_intra_list_diversity_hand_computed():
    # genres A, B, C. Items: 0 {A, B}, 1 {B}, 2 {C}, 3 {}, 4 {}
    genres = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
    lists = torch.tensor([[0, 1, 2], [3, 4, 0], [1, 0, 4]])
    # list 0: J(0,1) = 1/2, J(0,2) = J(1,2) = 0 -> distances 1/2, 1, 1
    # list 1: both genre-less (empty union) -> distance 1 by convention; genre-less vs {A, B} -> 1
    # list 2: J(1,0) = 1/2, the rest involve item 4 -> 1
    expected = [2.5 / 3, 1.0, 2.5 / 3]
    assert genre_intra_list_diversity(lists, genres).tolist() == pytest.approx(expected)
    assert genre_intra_list_diversity(lists, genres.to_sparse(), batch_size=2).tolist() == pytest.approx(
        expected
    )


def test_genre_intra_list_diversity_matches_set_loop():
    generator = torch.Generator().manual_seed(4)
    genres = torch.rand(25, 6, generator=generator) < 0.3
    lists = random_lists(6, 5, 25, seed=5)
    sets = [set(torch.nonzero(row).flatten().tolist()) for row in genres]
    expected = []
    for row in lists.tolist():
        distances = [
            1 - len(sets[i] & sets[j]) / len(sets[i] | sets[j]) if sets[i] | sets[j] else 1.0
            for i, j in combinations(row, 2)
        ]
        expected.append(sum(distances) / len(distances))
    assert genre_intra_list_diversity(lists, genres).tolist() == pytest.approx(expected)


# --- inter-list diversity, coverage, Gini -----------------------------------------------------------------


def test_inter_list_diversity_hand_computed():
    # overlaps: lists 0 and 1 share item 0, the other pairs nothing -> mean overlap 1/3 of a pair, /K = 1/6
    assert inter_list_diversity(torch.tensor([[0, 1], [0, 2], [3, 4]]), 5) == pytest.approx(5 / 6)
    assert inter_list_diversity(torch.tensor([[0, 1], [1, 0], [0, 1]]), 5) == pytest.approx(0.0)
    assert inter_list_diversity(torch.tensor([[0, 1], [2, 3], [4, 5]]), 6) == pytest.approx(1.0)


def test_inter_list_diversity_matches_pairwise_loop():
    lists = random_lists(12, 6, 20, seed=6)
    rows = [set(row) for row in lists.tolist()]
    overlaps = [len(rows[u] & rows[v]) / 6 for u in range(12) for v in range(12) if u != v]
    assert inter_list_diversity(lists, 20) == pytest.approx(1 - sum(overlaps) / len(overlaps))


def test_inter_list_diversity_needs_two_lists():
    with pytest.raises(ValueError):
        inter_list_diversity(torch.tensor([[0, 1]]), 3)


def test_coverage_counts_distinct_recommended_items():
    assert coverage(torch.tensor([[0, 1], [1, 2]]), 5) == pytest.approx(3 / 5)
    assert coverage(torch.tensor([[4, 3], [1, 0], [2, 0]]), 5) == pytest.approx(1.0)


def test_gini_known_distributions():
    assert gini(torch.tensor([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)  # every item once
    assert gini(torch.tensor([[2], [2], [2]]), 4) == pytest.approx(3 / 4)  # one item only: (n - 1) / n
    # counts (0, 1, 2, 3): sum_r (2r - 5) c_(r) = -1 + 2 + 9 = 10, over n * sum = 4 * 6 -> 5/12
    assert gini(torch.tensor([[1], [2], [2], [3], [3], [3]]), 4) == pytest.approx(5 / 12)


def test_gini_matches_mean_absolute_difference():
    lists = torch.randint(0, 15, (40, 1), generator=torch.Generator().manual_seed(8))
    counts = torch.bincount(lists.flatten(), minlength=15).tolist()
    mean = sum(counts) / 15
    expected = sum(abs(a - b) for a in counts for b in counts) / (2 * 15**2 * mean)
    assert gini(lists, 15) == pytest.approx(expected)


# --- top-K lists ------------------------------------------------------------------------------------------


def test_top_k_lists_rank_and_exclude():
    item_emb = torch.tensor([[1.0], [4.0], [3.0], [2.0], [0.0]])
    user_emb = torch.tensor([[1.0], [-1.0], [1.0]])
    seen = UserItems.from_pairs([0, 2, 2], [1, 1, 2], n_users=3, n_items=5)
    lists = top_k_lists(user_emb, item_emb, [seen], k=2, batch_size=2)
    # user 0: 4 is seen -> [2, 3]; user 1 prefers small scores -> [4, 0]; user 2: 1 and 2 seen -> [3, 0]
    assert lists.tolist() == [[2, 3], [4, 0], [3, 0]]
    assert top_k_lists(user_emb, item_emb, [seen], k=2, users=torch.tensor([2, 0])).tolist() == [
        [3, 0],
        [2, 3],
    ]


def test_top_k_lists_scored_matches_argsort_for_any_scorer():
    generator = torch.Generator().manual_seed(9)
    table = torch.randn(6, 10, generator=generator)  # a lookup table, not a dot product
    seen = UserItems.from_pairs([0, 0, 3, 5], [1, 7, 2, 9], n_users=6, n_items=10)
    users = torch.tensor([5, 0, 3, 3])
    lists = top_k_lists_scored(lambda block: table[block], users, [seen], k=4, batch_size=3)
    for row, user in zip(lists.tolist(), users.tolist(), strict=True):
        banned = set(seen.indices[seen.indptr[user] : seen.indptr[user + 1]].tolist())
        ranked = [i for i in torch.argsort(table[user], descending=True).tolist() if i not in banned]
        assert row == ranked[:4]


def test_top_k_lists_refuse_users_with_too_few_candidates():
    seen = UserItems.from_pairs([0, 0], [0, 1], n_users=1, n_items=3)
    with pytest.raises(ValueError):
        top_k_lists(torch.ones(1, 1), torch.ones(3, 1), [seen], k=2)


# --- cold-start bins --------------------------------------------------------------------------------------


def test_activity_bins_hand_computed():
    counts = torch.tensor([5, 3, 3, 8, 10, 3, 20, 7, 12, 9])
    bins, labels = activity_bins(counts, bottom=0.1)
    # bottom 10% = 1 user; users 1, 2 and 5 tie on 3 -> the lowest id, user 1.
    # the rest, sorted: 3 3 5 7 8 9 10 12 20; "lower" quantiles at positions 2, 4, 6 -> 5, 8, 10
    assert bins.tolist() == [1, 0, 1, 2, 3, 1, 4, 2, 4, 3]
    assert labels == ["bottom 10% (3–3)", "3–5", "7–8", "9–10", "12–20"]


def test_activity_bins_bottom_size_and_empty_bins():
    # ceil(1% of 700) = 7, not 8 (0.01 * 700 = 7.000000000000001 in floating point)
    bins, _ = activity_bins(torch.arange(700))
    assert int((bins == 0).sum()) == 7 and bins[:7].tolist() == [0] * 7
    bins, _ = activity_bins(torch.arange(250))
    assert int((bins == 0).sum()) == 3  # ceil(2.5)
    # the rest all share one count: one quantile bin, and the empty "above" bin is dropped
    bins, labels = activity_bins(torch.tensor([1, 4, 4, 4, 4]), bottom=0.2)
    assert bins.tolist() == [0, 1, 1, 1, 1] and labels == ["bottom 20% (1–1)", "4–4"]


def test_per_bin_means_by_hand():
    bin_of_user = torch.tensor([0, 1, 1, 2, 0])
    labels = ["cold", "mid", "hot"]
    users = torch.tensor([1, 2, 4, 1])  # evaluated users; nobody from bin 2 (user 3)
    values = {"user": users, "ndcg@2": torch.tensor([0.2, 0.4, 1.0, 0.6])}
    frame = per_bin(values, users, bin_of_user, labels)
    assert frame["bin"].tolist() == labels and frame["n_users"].tolist() == [1, 3, 0]
    assert "user" not in frame.columns
    assert frame["ndcg@2"].tolist()[:2] == pytest.approx([1.0, (0.2 + 0.4 + 0.6) / 3])
    assert math.isnan(frame["ndcg@2"].tolist()[2])


def test_per_bin_takes_rank_metrics_per_user_output():
    item_emb = torch.tensor([[3.0], [2.0], [1.0]])
    user_emb = torch.ones(3, 1)
    target = UserItems.from_pairs([0, 1, 2], [0, 1, 2], n_users=3, n_items=3)
    per_user = rank_metrics(user_emb, item_emb, target, ks=[1], per_user=True)["per_user"]
    frame = per_bin(per_user, per_user["user"], torch.tensor([0, 1, 1]), ["a", "b"])
    # only user 0 hits at rank 1; users 1 and 2 miss
    assert frame["hit@1"].tolist() == pytest.approx([1.0, 0.0])
    assert frame["n_users"].tolist() == [1, 2]


def test_genre_matrix_follows_item_ids():
    items = pd.DataFrame({"item": [1, 0, 2], "genres": [["b"], ["a", "b"], []]})
    assert genre_matrix(items).tolist() == [[True, True], [False, True], [False, False]]


def test_analyse_run_writes_diversity_per_k_and_activity_bins(tmp_path):
    items = pd.DataFrame({"item": range(6), "genres": [["a"], ["a"], ["b"], ["b"], ["a", "b"], []]})
    items.to_parquet(tmp_path / "items.parquet")
    lists = np.array([[0, 1, 2], [0, 2, 4], [3, 4, 5]])
    np.savez(tmp_path / "top.npz", user=np.array([0, 1, 2]), items=lists)
    pd.DataFrame({"user": [0, 1, 2], "ndcg@2": [1.0, 0.5, 0.0]}).to_parquet(tmp_path / "per_user.parquet")
    train = pd.DataFrame({"user": [0, 1, 1, 2, 2, 2], "item": [0, 0, 1, 0, 1, 2]})
    train.to_parquet(tmp_path / "train.parquet")
    diversity, activity = analyse_run(
        tmp_path / "top.npz", tmp_path / "per_user.parquet", tmp_path / "items.parquet",
        tmp_path / "train.parquet", None, [2, 3, 10], tmp_path / "d.json", tmp_path / "a.csv",
    )  # fmt: skip
    assert set(diversity) == {"2", "3"}  # K = 10 is longer than the lists
    top2 = torch.as_tensor(lists[:, :2])
    assert diversity["2"]["inter_list"] == pytest.approx(inter_list_diversity(top2, 6))
    assert diversity["3"]["coverage"] == 1.0 and "ild_text" not in diversity["3"]
    assert activity["n_users"].sum() == 3 and activity["ndcg@2"].iloc[0] == 1.0  # user 0: least active
    assert (tmp_path / "d.json").exists() and (tmp_path / "a.csv").exists()


def test_diversity_blocks_stay_small_whatever_k_is(monkeypatch):
    """The (B x K x K) pair matrices of a block stay under 64 MB: K = 1,000 gives 8 lists a block."""
    from specrec import diversity

    assert diversity.lists_per_block(1000) == 8 and diversity.lists_per_block(20) == 1024
    assert diversity.lists_per_block(5000) == 1  # one list at a time, never less
    seen = []
    real_bmm = torch.bmm
    monkeypatch.setattr(diversity.torch, "bmm", lambda a, b: seen.append(a.shape[0]) or real_bmm(a, b))
    monkeypatch.setattr(diversity, "BLOCK_BYTES", 8 * 6 * 6 * 3)  # three lists of K = 6 a block
    generator = torch.Generator().manual_seed(0)
    lists = torch.stack([torch.randperm(20, generator=generator)[:6] for _ in range(10)])
    vectors = torch.randn(20, 4, generator=generator)
    blocked = diversity.intra_list_diversity(lists, vectors)
    assert seen == [3, 3, 3, 1]
    monkeypatch.setattr(diversity, "BLOCK_BYTES", 2**30)  # all ten lists in one block: the same values
    assert torch.allclose(blocked, diversity.intra_list_diversity(lists, vectors))


def test_diversity_at_k_1000_runs_under_a_memory_cap(tmp_path):
    """The issue's trial under a real cap: 256 lists of K = 1,000 would need 2 GB of pair matrices at once
    (the job that was killed by the kernel); in blocks the process stays under its address-space limit."""
    import subprocess
    import sys

    script = """
import resource, torch
from specrec.diversity import intra_list_diversity
torch.set_num_threads(1)
generator = torch.Generator().manual_seed(0)
lists = torch.stack([torch.randperm(3000, generator=generator)[:1000] for _ in range(256)])
vectors = torch.randn(3000, 16, generator=generator)
used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
limit = used * 1024 + 768 * 2**20  # what the imports took, plus 768 MB
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
values = intra_list_diversity(lists, vectors)
assert values.shape == (256,) and bool(((values > 0.9) & (values < 1.1)).all())
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
