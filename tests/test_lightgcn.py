import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from specrec.evaluate import rank_metrics
from specrec.interactions import UserItems
from specrec.models import MODELS
from specrec.models.lightgcn import LightGCN

# 4 users, 3 items; user 3 and item 2 have no edge; (1, 1) is listed twice and must count once
USERS = torch.tensor([0, 0, 1, 1, 2, 1])
ITEMS = torch.tensor([0, 1, 1, 0, 1, 1])
N_USERS, N_ITEMS = 4, 3


def dense_adjacency() -> np.ndarray:
    n = N_USERS + N_ITEMS
    a = np.zeros((n, n))
    for u, i in zip(USERS.tolist(), ITEMS.tolist(), strict=True):
        a[u, N_USERS + i] = a[N_USERS + i, u] = 1.0
    degree = a.sum(1)
    scale = np.divide(1.0, np.sqrt(degree), out=np.zeros(n), where=degree > 0)
    return scale[:, None] * a * scale[None, :]


def tiny(**kwargs) -> LightGCN:
    torch.manual_seed(0)
    return MODELS["lightgcn"](N_USERS, N_ITEMS, dim=5, train_users=USERS, train_items=ITEMS, **kwargs)


def test_adjacency_matches_dense_normalisation():
    model = tiny()
    adjacency = model.adjacency.to_dense().double().numpy()
    np.testing.assert_allclose(adjacency, dense_adjacency(), rtol=1e-6)
    np.testing.assert_allclose(adjacency, adjacency.T)
    assert np.isfinite(adjacency).all()


@pytest.mark.parametrize(("combination", "n_layers"), [("mean", 3), ("sum", 3), ("mean", 1), ("sum", 0)])
def test_propagation_matches_dense_numpy(combination, n_layers):
    model = tiny(n_layers=n_layers, layer_combination=combination)
    e0 = model.embedding.weight.detach().double().numpy()
    a_hat = dense_adjacency()
    layers = [e0]
    for _ in range(n_layers):
        layers.append(a_hat @ layers[-1])
    weight = 1 / (n_layers + 1) if combination == "mean" else 1.0
    expected = weight * sum(layers)
    users, items = model()
    assert users.shape == (N_USERS, 5) and items.shape == (N_ITEMS, 5)
    np.testing.assert_allclose(users.detach().numpy(), expected[:N_USERS], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(items.detach().numpy(), expected[N_USERS:], rtol=1e-5, atol=1e-7)


def test_isolated_nodes_get_zero_propagated_rows():
    model = tiny(n_layers=3)
    layers = model.propagate()
    isolated = [3, N_USERS + 2]  # user 3, item 2
    for layer in layers[1:]:
        assert torch.isfinite(layer).all()
        assert torch.equal(layer[isolated], torch.zeros(2, 5))
    users, items = model()
    e0 = model.embedding.weight
    torch.testing.assert_close(users[3], e0[3] / 4)
    torch.testing.assert_close(items[2], e0[N_USERS + 2] / 4)


def test_gradients_match_dense_autograd():
    model = tiny(layer_combination="sum")
    target = torch.randn(N_USERS + N_ITEMS, 5, generator=torch.Generator().manual_seed(1))
    users, items = model()
    (torch.cat([users, items]) * target).pow(2).sum().backward()
    grad = model.embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0

    e0 = model.embedding.weight.detach().clone().requires_grad_(True)
    a_hat = torch.from_numpy(dense_adjacency()).float()
    x, total = e0, e0
    for _ in range(3):
        x = a_hat @ x
        total = total + x
    (total * target).pow(2).sum().backward()
    torch.testing.assert_close(grad, e0.grad)


def test_to_device_state_dict_and_deepcopy():
    model = tiny().to("cpu")
    assert model.adj_values.device.type == "cpu" and model.adjacency.layout == torch.sparse_csr
    assert list(model.state_dict()) == ["embedding.weight"]  # the graph is derived data, not a weight
    clone = copy.deepcopy(model)
    fresh = tiny()
    with torch.no_grad():
        fresh.embedding.weight.zero_()
    fresh.load_state_dict(clone.state_dict())
    for a, b in zip(model(), fresh(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu():
    model = tiny()
    expected = [t.detach() for t in model()]
    gpu = model.to("cuda")
    got = gpu()
    sum(t.sum() for t in got).backward()
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b.detach().cpu(), a)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="train_users and train_items"):
        MODELS["lightgcn"](N_USERS, N_ITEMS, train_items=ITEMS)
    with pytest.raises(ValueError, match="differ in length"):
        LightGCN(N_USERS, N_ITEMS, train_users=USERS[:-1], train_items=ITEMS)
    with pytest.raises(ValueError, match="train_items must lie"):
        LightGCN(N_USERS, N_ITEMS, train_users=USERS, train_items=ITEMS + 2)
    with pytest.raises(ValueError, match="layer_combination"):
        tiny(layer_combination="concat")
    with pytest.raises(ValueError, match="n_layers"):
        tiny(n_layers=-1)


def planted(n_users=60, n_items=45, groups=3, per_user=8, seed=0):
    """Users of group g like items of group g; per user, 6 training and 2 held-out items."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    items_per_group = n_items // groups
    for user in range(n_users):
        group = user % groups
        liked = rng.choice(items_per_group, per_user, replace=False) + group * items_per_group
        train += [(user, item) for item in liked[:6]]
        test += [(user, item) for item in liked[6:]]
    return np.array(train), np.array(test), n_users, n_items


def test_short_bpr_training_beats_random():
    train, test, n_users, n_items = planted()
    train_index = UserItems.from_pairs(train[:, 0], train[:, 1], n_users, n_items)
    test_index = UserItems.from_pairs(test[:, 0], test[:, 1], n_users, n_items)
    users, items = torch.from_numpy(train[:, 0]), torch.from_numpy(train[:, 1])
    torch.manual_seed(0)
    model = LightGCN(n_users, n_items, dim=16, train_users=users, train_items=items)

    def recall() -> float:
        with torch.no_grad():
            return rank_metrics(*model(), test_index, [train_index], ks=[10])["recall@10"]

    before = recall()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        negatives = torch.randint(0, n_items, (users.numel(),), generator=generator)
        user_table, item_table = model()
        u, p, n = user_table[users], item_table[items], item_table[negatives]
        loss = -F.logsigmoid((u * p).sum(1) - (u * n).sum(1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = recall()
    # random ranking of the 39 unseen items puts 10/39 ~ 0.26 of the held-out items in the top 10
    assert after > 0.6 and after > before + 0.2
