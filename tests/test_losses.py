import pytest
import torch
import torch.nn.functional as F

from specrec.losses import LOSSES, build_loss


def planted_problem(n_users=30, n_items=40, dim=8, seed=0):
    """Users like the items of their own cluster: a problem MF can fit."""
    generator = torch.Generator().manual_seed(seed)
    users = torch.randint(0, n_users, (600,), generator=generator)
    items = (users % 4) * 10 + torch.randint(0, 10, (600,), generator=generator)
    negatives = torch.randint(0, n_items, (600, 8), generator=generator)
    user_table = torch.nn.Parameter(0.1 * torch.randn(n_users, dim, generator=generator))
    item_table = torch.nn.Parameter(0.1 * torch.randn(n_items, dim, generator=generator))
    return users, items, negatives, user_table, item_table


@pytest.mark.parametrize("recipe", [{"loss": "bpr", "n_negatives": 1}, {"loss": "ssm", "n_negatives": 8}])
def test_loss_decreases_on_a_tiny_problem(recipe):
    users, items, negatives, user_table, item_table = planted_problem()
    loss_fn = build_loss(recipe)
    optimizer = torch.optim.Adam([user_table, item_table], lr=0.05)

    def step():
        neg = item_table[negatives[:, : loss_fn.n_negatives]]
        loss = sum(loss_fn(user_table[users], item_table[items], neg).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    first = step()
    for _ in range(100):
        last = step()
    assert last < 0.5 * first


def test_bpr_hand_computed():
    users = torch.tensor([[1.0, 0.0]])
    positives = torch.tensor([[2.0, 0.0]])
    negatives = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    parts = build_loss({"loss": "bpr", "n_negatives": 2})(users, positives, negatives)
    expected = -(F.logsigmoid(torch.tensor(2.0)) + F.logsigmoid(torch.tensor(1.0))) / 2
    assert float(parts["bpr"]) == pytest.approx(float(expected))


def test_ssm_hand_computed_with_temperature():
    users = torch.tensor([[1.0, 0.0]])
    positives = torch.tensor([[2.0, 0.0]])
    negatives = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    parts = build_loss({"loss": "ssm", "n_negatives": 2, "temperature": 0.5})(users, positives, negatives)
    logits = torch.tensor([4.0, 0.0, 2.0])
    assert float(parts["ssm"]) == pytest.approx(float(-torch.log_softmax(logits, 0)[0]))


def test_unknown_loss_lists_valid_names():
    with pytest.raises(KeyError, match="valid names: bpr, ssm"):
        build_loss({"loss": "nope"})
    assert "bpr" in LOSSES and "ssm" in LOSSES


def test_bad_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="bad parameters for loss 'bpr'"):
        build_loss({"loss": "bpr", "gamma": 1.0})


def test_shared_negatives_score_like_per_positive_copies():
    generator = torch.Generator().manual_seed(1)
    users, positives = torch.randn(5, 4, generator=generator), torch.randn(5, 4, generator=generator)
    shared = torch.randn(3, 4, generator=generator)
    for recipe in ({"loss": "bpr", "n_negatives": 3}, {"loss": "ssm", "n_negatives": 3}):
        loss = build_loss(recipe)
        once = loss(users, positives, shared)
        copied = loss(users, positives, shared.expand(5, 3, 4))
        assert float(sum(once.values())) == pytest.approx(float(sum(copied.values())))
