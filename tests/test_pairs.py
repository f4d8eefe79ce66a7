import numpy as np
import pandas as pd
import pytest
import torch

from specrec.text.pairs import (
    attribute_incidence,
    metadata_pairs,
    random_pairs,
    sample,
    shares_nothing,
    text_knn_pairs,
)

FIELDS = ("genres", "directors", "writers", "actors")


def tiny_items() -> pd.DataFrame:
    """Six invented items. Overlaps over all four fields (by hand): 0-1: 3 (A, X, p), 0-2: 1 (B),
    0-4: 1 (A), 1-4: 1 (A), 3-4: 2 (C, s); every other pair 0. Item 3's writer "X" is not item 0's
    director "X" (different fields); item 5 shares nothing; item 2 lists actor "r" twice (counts once)."""
    return pd.DataFrame(
        {
            "item": range(6),
            "genres": [["A", "B"], ["A"], ["B"], ["C"], np.array(["C", "A"]), ["D"]],
            "directors": [["X"], ["X"], ["Y"], ["Z"], [], ["V"]],
            "writers": [[], ["W"], None, ["X"], [], None],
            "actors": [["p", "q"], np.array(["p"]), ["r", "r"], ["s"], ["s"], []],
        }
    )


def attribute_sets(items: pd.DataFrame, fields) -> list[set]:
    """Reference: the (field, value) set of every item, by a plain loop."""
    sets = []
    for _, row in items.iterrows():
        values = set()
        for field in fields:
            if row[field] is not None:
                values |= {(field, v) for v in row[field]}
        sets.append(values)
    return sets


def positive_sets(pairs) -> list[set]:
    index = pairs.positives
    return [set(index.indices[index.indptr[i] : index.indptr[i + 1]].tolist()) for i in range(pairs.n_items)]


@pytest.mark.parametrize(
    ("min_overlap", "expected"),
    [
        (1, [{1, 2, 4}, {0, 4}, {0}, {4}, {0, 1, 3}, set()]),
        (2, [{1}, {0}, set(), {4}, {3}, set()]),
        (3, [{1}, {0}, set(), set(), set(), set()]),
    ],
)
def test_metadata_positives_by_hand(min_overlap, expected):
    # block_size 4 splits the six items over two blocks of the overlap product
    assert positive_sets(metadata_pairs(tiny_items(), FIELDS, min_overlap, block_size=4)) == expected


def test_metadata_positives_over_a_subset_of_fields():
    pairs = metadata_pairs(tiny_items(), ("directors", "writers", "actors"), 1)
    assert positive_sets(pairs) == [{1}, {0}, set(), {4}, {3}, set()]


def test_max_positives_keeps_the_largest_overlaps_with_ties_to_the_smaller_id():
    one = metadata_pairs(tiny_items(), FIELDS, 1, max_positives=1)
    assert positive_sets(one) == [{1}, {0}, {0}, {4}, {3}, set()]
    # item 0: 1 (3) then 2 and 4 tie at 1 -> 2; item 4: 3 (2) then 0 and 1 tie at 1 -> 0
    two = metadata_pairs(tiny_items(), FIELDS, 1, max_positives=2, block_size=4)
    assert positive_sets(two) == [{1, 2}, {0, 4}, {0}, {4}, {0, 3}, set()]
    # the cap never admits an item below min_overlap
    assert positive_sets(metadata_pairs(tiny_items(), FIELDS, 2, max_positives=5))[0] == {1}


def test_attribute_incidence_matches_the_reference_sets():
    items = tiny_items()
    incidence = attribute_incidence(items, FIELDS)
    counts = incidence.counts().tolist()
    assert counts == [len(s) for s in attribute_sets(items, FIELDS)] == [5, 4, 3, 4, 3, 2]
    # 4 genres + 4 directors + 2 writers + 4 actors, "X" once as a director and once as a writer
    assert incidence.n_items == 14


def test_metadata_pairs_reject_bad_arguments():
    with pytest.raises(ValueError, match="min_overlap"):
        metadata_pairs(tiny_items(), FIELDS, 0)
    with pytest.raises(ValueError, match="sorted by item id"):
        metadata_pairs(tiny_items().iloc[::-1], FIELDS)


def check_draw(items, fields, min_overlap, drawn):
    """Every positive has the overlap, and `valid` is exactly "shares no attribute and is not the anchor"."""
    sets = attribute_sets(items, fields)
    for anchor, positive in zip(drawn.anchors.tolist(), drawn.positives.tolist(), strict=True):
        assert positive != anchor and len(sets[anchor] & sets[positive]) >= min_overlap
    for row, anchor in enumerate(drawn.anchors.tolist()):
        for negative, valid in zip(drawn.negatives[row].tolist(), drawn.valid[row].tolist(), strict=True):
            assert valid == (negative != anchor and not sets[anchor] & sets[negative])


@pytest.mark.parametrize("min_overlap", [1, 2])
def test_sampler_invariants_over_many_draws(min_overlap):
    items = tiny_items()
    pairs = metadata_pairs(items, FIELDS, min_overlap)
    generator = torch.Generator().manual_seed(0)
    anchors = torch.arange(6).repeat(300)
    for rounds in (1, 60):  # one round leaves clashes (masked), sixty find a negative for every slot
        drawn = sample(pairs, anchors, 8, generator, rounds=rounds)
        check_draw(items, FIELDS, min_overlap, drawn)
    assert drawn.valid.all()


def test_sampler_masks_what_one_round_cannot_fix():
    drawn = sample(metadata_pairs(tiny_items(), FIELDS), torch.arange(6).repeat(50), 8, rounds=1)
    assert not drawn.valid.all()  # item 0 clashes with 4 of the 6 items, so some slots stay invalid


def test_positives_and_negatives_cover_their_sets_uniformly():
    pairs = metadata_pairs(tiny_items(), FIELDS, 1)
    anchors = torch.full((4000,), 2)  # item 2: one positive {0}; negatives {1, 3, 4, 5}
    drawn = sample(pairs, anchors, 2, torch.Generator().manual_seed(1), rounds=60)
    assert set(drawn.positives.tolist()) == {0}
    share = torch.bincount(drawn.negatives.flatten(), minlength=6).double() / drawn.negatives.numel()
    assert share[[0, 2]].sum() == 0 and torch.all((share[[1, 3, 4, 5]] - 0.25).abs() < 0.02)
    drawn = sample(pairs, torch.full((4000,), 4), 1, torch.Generator().manual_seed(2))
    counts = torch.bincount(drawn.positives, minlength=6)
    assert counts[[0, 1, 3]].min() > 1200 and counts[[2, 4, 5]].sum() == 0


def test_anchors_without_positives_are_dropped_in_order():
    pairs = metadata_pairs(tiny_items(), FIELDS, 2)  # items 2 and 5 have no positive at overlap 2
    drawn = sample(pairs, torch.tensor([5, 0, 2, 3, 5]), 4, torch.Generator().manual_seed(0))
    assert drawn.anchors.tolist() == [0, 3] and drawn.positives.tolist() == [1, 4]
    assert drawn.negatives.shape == drawn.valid.shape == (2, 4)
    empty = sample(pairs, torch.tensor([2, 5]), 4)
    assert empty.anchors.numel() == 0 and empty.negatives.shape == (0, 4)


def test_sample_is_deterministic_by_seed():
    pairs = metadata_pairs(tiny_items(), FIELDS, 1)
    anchors = torch.arange(6).repeat(20)
    first, again, other = (sample(pairs, anchors, 5, torch.Generator().manual_seed(s)) for s in (7, 7, 8))
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.negatives, other.negatives)
    torch.manual_seed(3)  # no generator: the global RNG
    assert sample(pairs, anchors, 5).negatives.shape == (100, 5)  # item 5 has no positive


def brute_force_knn(emb: torch.Tensor, k: int, has_text: list[bool]) -> list[list[int]]:
    unit = emb / emb.norm(dim=1, keepdim=True)
    neighbours = []
    for i in range(len(unit)):
        if not has_text[i]:
            neighbours.append([])
            continue
        sims = [(float(unit[i] @ unit[j]), j) for j in range(len(unit)) if j != i and has_text[j]]
        neighbours.append([j for _, j in sorted(sims, reverse=True)[:k]])
    return neighbours


def test_text_knn_matches_a_brute_force_loop():
    emb = torch.randn(13, 5, generator=torch.Generator().manual_seed(0)) * 3
    has_text = [i not in (4, 9) for i in range(13)]
    pairs = text_knn_pairs(emb, k=3, items_with_text=torch.tensor(has_text), exclusion_factor=2, block_size=5)
    reference3 = brute_force_knn(emb, 3, has_text)
    assert positive_sets(pairs) == [set(r) for r in reference3]
    # negatives: anything but the anchor and its 3 * 2 nearest (items without text stay eligible)
    reference6 = brute_force_knn(emb, 6, has_text)
    anchors = torch.arange(13)
    candidates = torch.arange(13).repeat(13, 1)
    valid = shares_nothing(pairs, anchors, candidates)
    for a in range(13):
        if has_text[a]:
            assert [c for c in range(13) if valid[a, c]] == [
                c for c in range(13) if c != a and c not in reference6[a]
            ]


def test_text_knn_with_metadata_negatives():
    items = tiny_items()
    emb = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    pairs = text_knn_pairs(emb, k=2, attributes=attribute_incidence(items, FIELDS))
    positives = positive_sets(pairs)
    assert positives == [set(r) for r in brute_force_knn(emb, 2, [True] * 6)]
    sets = attribute_sets(items, FIELDS)
    valid = shares_nothing(pairs, torch.arange(6), torch.arange(6).repeat(6, 1))
    for a in range(6):
        for c in range(6):
            assert bool(valid[a, c]) == (c != a and not sets[a] & sets[c] and c not in positives[a])


def test_random_pairs_have_the_given_counts_and_no_self():
    counts = metadata_pairs(tiny_items(), FIELDS, 1).positive_counts()
    pairs = random_pairs(6, counts, torch.Generator().manual_seed(0), block_size=4)
    assert torch.equal(pairs.positive_counts(), counts)
    for i, positives in enumerate(positive_sets(pairs)):
        assert i not in positives
    big = random_pairs(20, 7, torch.Generator().manual_seed(1))
    assert big.positive_counts().tolist() == [7] * 20
    assert all(i not in s and len(s) == 7 for i, s in enumerate(positive_sets(big)))
    again = random_pairs(20, 7, torch.Generator().manual_seed(1))
    assert torch.equal(big.positives.indices, again.positives.indices)
    # negatives: every item that is neither the anchor nor one of its random positives
    valid = shares_nothing(big, torch.arange(20), torch.arange(20).repeat(20, 1))
    for a, positives in enumerate(positive_sets(big)):
        assert {c for c in range(20) if valid[a, c]} == set(range(20)) - positives - {a}


def test_pairs_move_with_their_clash_bits():
    pairs = metadata_pairs(tiny_items(), FIELDS, 1)
    bits = pairs.clash_bits
    moved = pairs.to("cpu")
    assert moved.clash_bits is not None and torch.equal(moved.clash_bits, bits)
    assert moved.blocked is moved.attributes


def test_sampler_invariants_on_ml1m_metadata(ml1m_items):
    items = ml1m_items
    fields = ("directors", "writers", "actors")
    pairs = metadata_pairs(items, fields, 1)
    anchors = torch.randint(len(items), (300,), generator=torch.Generator().manual_seed(0))
    check_draw(items, fields, 1, sample(pairs, anchors, 16, torch.Generator().manual_seed(0)))


def test_an_item_without_metadata_is_no_negative_of_itself():
    items = pd.DataFrame({"item": range(3), "genres": [["A"], ["A"], []], "directors": [[], [], None]})
    pairs = metadata_pairs(items, ("genres", "directors"), 1)
    assert positive_sets(pairs) == [{1}, {0}, set()]
    valid = shares_nothing(pairs, torch.arange(3), torch.arange(3).repeat(3, 1))
    assert valid.tolist() == [[False, False, True], [False, False, True], [True, True, False]]


def test_sampling_on_the_device_of_the_anchors():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    items = tiny_items()
    pairs = metadata_pairs(items, FIELDS, 1).to(device)
    anchors = torch.arange(6, device=device).repeat(100)
    drawn = sample(pairs, anchors, 8, torch.Generator(device=device).manual_seed(0), rounds=60)
    assert all(t.device == anchors.device for t in drawn) and drawn.valid.all()
    check_draw(items, FIELDS, 1, drawn)
