"""The bce loss against a direct loop reference (values and gradients), per-positive and shared negatives."""

import math

import pytest
import torch
import torch.nn.functional as F

from specrec.losses import LOSSES, Batch

B, N, D, N_USERS, N_ITEMS = 4, 3, 5, 6, 7


@pytest.fixture
def params():
    generator = torch.Generator().manual_seed(0)
    make = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)  # noqa: E731
    return make(N_USERS, D), make(N_ITEMS, D), make(N_ITEMS)


def scorer(params):
    """A pair scorer that is not a dot product of the tables: s(u, i) = e_u . e_i + c_i."""
    users, items, bias = params
    return lambda u, i: (users[u] * items[i]).sum(-1) + bias[i]


def batch_of(params, negatives, with_scorer=True) -> Batch:
    users_table, items_table, _ = params
    users, items = torch.tensor([0, 2, 5, 2]), torch.tensor([1, 1, 6, 3])
    return Batch(
        users=users,
        items=items,
        user_emb=users_table[users],
        item_emb=items_table[items],
        negatives=negatives,
        negative_emb=items_table[negatives],
        user_table=users_table,
        item_table=items_table,
        score_pairs=scorer(params) if with_scorer else None,
    )


def reference(params, negatives, l2=0.0):
    """mean_b [-log σ(s(u, i⁺)) - mean_n log(1 - σ(s(u, i⁻_n)))] + l2 ½ Σ‖rows‖² / B, one pair at a time."""
    users_table, items_table, _ = params
    score = scorer(params)
    users, items = [0, 2, 5, 2], [1, 1, 6, 3]
    total, squares = 0.0, 0.0
    for b, (u, i) in enumerate(zip(users, items, strict=True)):
        row = negatives.tolist() if negatives.ndim == 1 else negatives[b].tolist()
        positive = score(torch.tensor(u), torch.tensor(i))
        total = total - torch.log(torch.sigmoid(positive))
        total = total - sum(
            torch.log(1 - torch.sigmoid(score(torch.tensor(u), torch.tensor(j)))) for j in row
        ) / len(row)
        squares = squares + users_table[u].square().sum() + items_table[i].square().sum()
        if negatives.ndim == 2:
            squares = squares + sum(items_table[j].square().sum() for j in row)
    if negatives.ndim == 1:
        squares = squares + sum(items_table[j].square().sum() for j in negatives.tolist())
    return total / B + l2 * squares / (2 * B)


def assert_same(value, expected, params):
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-10)
    for got, want in zip(
        torch.autograd.grad(value, params), torch.autograd.grad(expected, params), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


PER_POSITIVE = torch.tensor([[0, 3, 4], [2, 2, 6], [5, 0, 1], [4, 6, 0]])
SHARED = torch.tensor([3, 0, 5])


@pytest.mark.parametrize("negatives", [PER_POSITIVE, SHARED], ids=["per-positive", "shared"])
def test_bce_against_loops(params, negatives):
    parts = LOSSES["bce"]()(batch_of(params, negatives))
    assert set(parts) == {"bce"}
    assert_same(parts["bce"], reference(params, negatives), params)


@pytest.mark.parametrize("negatives", [PER_POSITIVE, SHARED], ids=["per-positive", "shared"])
def test_bce_with_l2_against_loops(params, negatives):
    parts = LOSSES["bce"](l2=0.3)(batch_of(params, negatives))
    assert_same(parts["bce"] + parts["l2"], reference(params, negatives, l2=0.3), params)


def test_shared_negatives_equal_per_positive_copies(params):
    shared = LOSSES["bce"]()(batch_of(params, SHARED))["bce"]
    copied = LOSSES["bce"]()(batch_of(params, SHARED.expand(B, -1)))["bce"]
    assert shared.item() == pytest.approx(copied.item(), rel=1e-12)


def test_without_a_scorer_the_scores_are_dot_products(params):
    users_table, items_table, bias = params
    with torch.no_grad():
        bias.zero_()  # the scorer then reduces to the dot product
    for negatives in (PER_POSITIVE, SHARED):
        dot = LOSSES["bce"]()(batch_of(params, negatives, with_scorer=False))["bce"]
        assert dot.item() == pytest.approx(reference(params, negatives).item(), rel=1e-12)


def test_one_negative_is_twice_the_mean_bce_over_the_labelled_rows(params):
    negatives = PER_POSITIVE[:, :1]
    batch = batch_of(params, negatives)
    logits = torch.cat(
        [batch.score_pairs(batch.users, batch.items), batch.score_pairs(batch.users, negatives[:, 0])]
    )
    labels = torch.cat([torch.ones(B), torch.zeros(B)]).double()
    expected = 2 * F.binary_cross_entropy_with_logits(logits, labels)
    assert LOSSES["bce"]()(batch)["bce"].item() == pytest.approx(expected.item(), rel=1e-12)


def test_hand_computed_value():
    # one pair, s(u, i+) = 0 and s(u, i-) = log 3: L = log 2 + softplus(log 3) = log 2 + log 4 = log 8
    users, items = torch.ones(1, 1), torch.tensor([[0.0], [math.log(3.0)]])
    negatives = torch.tensor([[1]])
    batch = Batch(
        torch.tensor([0]), torch.tensor([0]), users, items[:1], negatives, items[negatives], users, items
    )
    assert float(LOSSES["bce"]()(batch)["bce"]) == pytest.approx(math.log(8.0))


def test_registration_and_missing_negatives(params):
    loss = LOSSES["bce"]()
    assert loss.needs_negatives
    batch = batch_of(params, PER_POSITIVE)
    batch.negatives, batch.negative_emb = None, None
    with pytest.raises(ValueError, match="needs sampled negatives"):
        loss(batch)
