"""Every loss and regulariser against a direct, unvectorised reference on tiny inputs (values, gradients)."""

import math

import numpy as np
import pytest
import torch

from specrec.interactions import UserItems
from specrec.losses import LOSSES, REGULARIZERS, Batch
from specrec.losses.directspec import linear_filter
from specrec.recipes import Recipe, RecipeError, resolve_recipe

B, N, D = 5, 3, 4


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


@pytest.fixture
def tensors():
    generator = torch.Generator().manual_seed(0)
    make = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)  # noqa: E731
    return make(B, D), make(B, D), make(B, N, D)


def batch_of(users_emb, items_emb, negatives_emb=None, users=None, items=None, train=None) -> Batch:
    users = torch.arange(B) if users is None else users
    items = torch.arange(B) if items is None else items
    return Batch(
        users=users,
        items=items,
        user_emb=users_emb,
        item_emb=items_emb,
        negatives=None if negatives_emb is None else torch.arange(B * N).reshape(B, N),
        negative_emb=negatives_emb,
        user_table=users_emb,
        item_table=items_emb,
        train=train,
        train_by_item=None if train is None else train.transpose(),
    )


def assert_same(vectorised, reference, inputs):
    """Equal values and equal gradients with respect to every input."""
    assert float(vectorised) == pytest.approx(float(reference), rel=1e-9, abs=1e-12)
    grads_v = torch.autograd.grad(vectorised, inputs, retain_graph=True, allow_unused=True)
    grads_r = torch.autograd.grad(reference, inputs, allow_unused=True)
    for gv, gr in zip(grads_v, grads_r, strict=True):
        if gr is None:
            assert gv is None or torch.allclose(gv, torch.zeros_like(gv))
        else:
            assert torch.allclose(gv, gr, atol=1e-10)


def test_bpr_against_loops(tensors):
    u, p, n = tensors
    value = LOSSES["bpr"]()(batch_of(u, p, n))["bpr"]
    terms = [-torch.log(torch.sigmoid(u[b] @ p[b] - u[b] @ n[b, j])) for b in range(B) for j in range(N)]
    assert_same(value, sum(terms) / len(terms), (u, p, n))


def test_ssm_against_loops(tensors):
    u, p, n = tensors
    value = LOSSES["ssm"](temperature=0.5)(batch_of(u, p, n))["ssm"]
    terms = []
    for b in range(B):
        logits = [u[b] @ p[b] / 0.5] + [u[b] @ n[b, j] / 0.5 for j in range(N)]
        terms.append(-(logits[0] - torch.logsumexp(torch.stack(logits), 0)))
    assert_same(value, sum(terms) / B, (u, p, n))


def test_shared_negatives_equal_per_positive_copies(tensors):
    u, p, n = tensors
    shared = n[0]
    for name in ("bpr", "ssm"):
        once = LOSSES[name]()(batch_of(u, p, shared))
        copied = LOSSES[name]()(batch_of(u, p, shared.expand(B, N, D)))
        assert float(next(iter(once.values()))) == pytest.approx(float(next(iter(copied.values()))))


def test_align_against_loops(tensors):
    u, p, _ = tensors
    value = LOSSES["align"]()(batch_of(u, p))["align"]
    reference = sum((unit(u[b]) - unit(p[b])).square().sum() for b in range(B)) / B
    assert_same(value, reference, (u, p))


def reference_filter(table: torch.Tensor, alpha: float, weight) -> torch.Tensor:
    """row b: e_b - alpha * sum_j w(b, j) e_j, written out."""
    rows = [unit(table[b]) for b in range(table.shape[0])]
    out = []
    for b, e_b in enumerate(rows):
        weights = [weight(b, j, e_b, e_j) for j, e_j in enumerate(rows)]
        out.append(e_b - alpha * sum(w * e_j for w, e_j in zip(weights, rows, strict=True)))
    return out


def directspec_reference(u, p, alpha, weight_for):
    users = reference_filter(u, alpha, weight_for(u, "user"))
    items = reference_filter(p, alpha, weight_for(p, "item"))
    return sum(-torch.log(torch.sigmoid(a @ b)) for a, b in zip(users, items, strict=True)) / B


def test_directspec_against_loops(tensors):
    u, p, _ = tensors
    value = LOSSES["directspec"](alpha=0.7)(batch_of(u, p))["directspec"]
    reference = directspec_reference(u, p, 0.7, lambda table, side: lambda b, j, e_b, e_j: e_b @ e_j)
    assert_same(value, reference, (u, p))


def softmax_weight(tau_of):
    def weight_for(table, side):
        rows = [unit(table[b]) for b in range(table.shape[0])]

        def weight(b, j, e_b, e_j):
            logits = torch.stack([tau_of(side, b, k) * (e_b @ e_k) for k, e_k in enumerate(rows)])
            return torch.softmax(logits, 0)[j]

        return weight

    return weight_for


def test_directspec_norm_penalty_against_the_gcn_codes_sum(tensors):
    """DirectSpec's LightGCN code: (sum_b -log sigma(<u^_b, i^_b>) + reg * sum of squares of U^, I^) / B."""
    u, p, _ = tensors
    parts = LOSSES["directspec_plus"](alpha=0.8, tau=3.0, norm_penalty=0.01)(batch_of(u, p))
    weight = softmax_weight(lambda side, b, k: 3.0)
    users, items = reference_filter(u, 0.8, weight(u, "user")), reference_filter(p, 0.8, weight(p, "item"))
    summed = sum(-torch.log(torch.sigmoid(a @ b)) for a, b in zip(users, items, strict=True))
    squares = sum(a.square().sum() + b.square().sum() for a, b in zip(users, items, strict=True))
    total = parts["directspec_plus"] + parts["directspec_plus_norm"]
    assert_same(total, (summed + 0.01 * squares) / B, (u, p))
    assert "directspec_norm" in LOSSES["directspec"](norm_penalty=0.01)(batch_of(u, p))


def test_directspec_plus_against_loops(tensors):
    u, p, _ = tensors
    value = LOSSES["directspec_plus"](alpha=0.8, tau=3.0)(batch_of(u, p))["directspec_plus"]
    reference = directspec_reference(u, p, 0.8, softmax_weight(lambda side, b, k: 3.0))
    assert_same(value, reference, (u, p))


def test_adaptive_directspec_plus_uses_tau0_for_pairs_that_share_an_interaction(tensors):
    u, p, _ = tensors
    # users 0,1 share item 0; users 2,3 share item 3; user 4 shares nothing. Items 0..4 are the positives.
    pairs = [(0, 0), (1, 0), (0, 1), (2, 3), (3, 3), (4, 4), (1, 2)]
    train = UserItems.from_pairs([a for a, _ in pairs], [b for _, b in pairs], n_users=B, n_items=B)
    user_sets = [{i for a, i in pairs if a == user} for user in range(B)]
    item_sets = [{a for a, i in pairs if i == item} for item in range(B)]

    def tau_of(side, b, k):
        sets = user_sets if side == "user" else item_sets
        return 2.0 if sets[b] & sets[k] else 5.0

    loss = LOSSES["directspec_plus"](alpha=0.8, tau0=2.0, tau1=5.0)
    value = loss(batch_of(u, p, train=train))["directspec_plus"]
    assert_same(value, directspec_reference(u, p, 0.8, softmax_weight(tau_of)), (u, p))


def test_linear_filter_maps_each_singular_value_to_sigma_minus_alpha_sigma_cubed():
    table = torch.randn(40, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.3
    sigma = np.linalg.svd(table.numpy(), compute_uv=False)
    filtered = np.linalg.svd(linear_filter(table, 0.5).numpy(), compute_uv=False)
    expected = np.sort(np.abs(sigma * (1 - 0.5 * sigma**2)))[::-1]
    assert np.allclose(filtered, expected)


def test_stable_rank_regularizer_against_numpy():
    table = torch.randn(30, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    rows = table.numpy() / np.linalg.norm(table.numpy(), axis=1, keepdims=True)
    sigma = np.linalg.svd(rows, compute_uv=False)
    assert float(REGULARIZERS["stable_rank"](table)) == pytest.approx(-(sigma**2).sum() / sigma[0] ** 2 / 8)


def test_stable_rank_regularizer_has_the_gradient_of_the_svd_form(tensors):
    """The Gram-matrix form (tr G / lambda_max) against -||X~||_F^2 / ||X~||_2^2 / d through an exact SVD."""
    u, _, _ = tensors
    sigma = torch.linalg.svdvals(torch.nn.functional.normalize(u, dim=-1))
    reference = -(sigma.square().sum() / sigma[0].square()) / u.shape[1]
    assert_same(REGULARIZERS["stable_rank"](u), reference, (u,))


def test_uniformity_regularizer_against_loops(tensors):
    u, _, _ = tensors
    value = REGULARIZERS["uniformity"](u)
    rows = [unit(u[b]) for b in range(B)]
    terms = [torch.exp(-2 * (rows[a] - rows[b]).square().sum()) for a in range(B) for b in range(a + 1, B)]
    assert_same(value, torch.log(sum(terms) / len(terms)), (u,))


RECIPES = {
    "bpr": {"loss": "bpr", "n_negatives": 1},
    "directau": {"loss": "align", "regularizers": {"uniformity": 1.0}},
    "directspec_plus": {
        "loss": "directspec_plus",
        "alpha": 0.5,
        "optimizer": "sgd",
        "lr": 10,
        "lr_decay": 0.99,
    },
}
ADDONS = {
    "sr_warm": {"regularizer": "stable_rank", "gamma": 2.0, "warm_epochs": 5},
    "sr": {"regularizer": "stable_rank"},
}


def test_recipe_names_resolve_to_a_loss_and_phased_regularizers():
    resolved = resolve_recipe("directau+sr_warm", RECIPES, ADDONS)
    assert resolved["loss"] == {"name": "align"}
    assert resolved["regularizers"] == [
        {"name": "uniformity", "gamma": 1.0, "phase": "tune"},
        {"name": "stable_rank", "gamma": 2.0, "phase": "warm"},
    ]
    assert resolved["warm"] == {"epochs": 5, "until": "epochs", "count_from": 1}
    resolved = resolve_recipe("directspec_plus", RECIPES, ADDONS)
    plus = Recipe.from_resolved(resolved)
    assert (plus.optimizer, resolved["lr"], plus.lr_decay, plus.loss.alpha) == ("sgd", 10, 0.99, 0.5)


def test_per_model_keys_override_the_recipe_for_that_model_only():
    on_gcn = {"lightgcn": {"lr_decay": 0.9999, "norm_penalty": 0.01}}
    recipes = {"ds": {**RECIPES["directspec_plus"], "per_model": on_gcn}}
    on_mf = Recipe.from_resolved(resolve_recipe("ds", recipes, ADDONS, model="mf"))
    on_gcn = Recipe.from_resolved(resolve_recipe("ds", recipes, ADDONS, model="lightgcn"))
    assert (on_mf.lr_decay, on_mf.loss.norm_penalty) == (0.99, 0.0)
    assert (on_gcn.lr_decay, on_gcn.loss.norm_penalty) == (0.9999, 0.01)
    assert "per_model" not in resolve_recipe("ds", recipes, ADDONS)


def test_stablerankregs_warm_start_counts_from_zero():
    """`epoch > warm_start_epochs` over epochs 0, 1, ...: warm_epochs 5 regularises 6 epochs."""
    addons = {"paper": {**ADDONS["sr_warm"], "warm_count_from": 0}}
    assert Recipe.from_resolved(resolve_recipe("bpr+paper", RECIPES, addons)).last_warm_epoch == 6
    assert Recipe.from_resolved(resolve_recipe("bpr+sr_warm", RECIPES, ADDONS)).last_warm_epoch == 5


def test_warm_phase_swaps_the_recipes_own_regularizers_for_the_warm_ones(tensors):
    u, p, _ = tensors
    recipe = Recipe.from_resolved(resolve_recipe("directau+sr_warm", RECIPES, ADDONS))
    warm = recipe.parts(batch_of(u, p), warm=True)
    tune = recipe.parts(batch_of(u, p), warm=False)
    assert set(warm) == {"align", "stable_rank_warm"} and set(tune) == {"align", "uniformity_tune"}
    expected = 2.0 * (REGULARIZERS["stable_rank"](u) + REGULARIZERS["stable_rank"](p)) / 2
    assert float(warm["stable_rank_warm"]) == pytest.approx(float(expected))
    always = Recipe.from_resolved(resolve_recipe("bpr+sr", RECIPES, ADDONS))
    assert always.has_warm_phase is False


def test_bad_recipes_are_clear_errors():
    with pytest.raises(
        RecipeError, match=r"unknown recipe 'nope' in 'nope\+sr'; valid names: bpr, directau, directspec_plus"
    ):
        resolve_recipe("nope+sr", RECIPES, ADDONS)
    with pytest.raises(RecipeError, match=r"unknown regularizer 'x' in 'bpr\+x'; valid names: sr, sr_warm"):
        resolve_recipe("bpr+x", RECIPES, ADDONS)
    with pytest.raises(RecipeError, match="needs sampled negatives"):
        Recipe.from_resolved(resolve_recipe("bpr", {"bpr": {"loss": "bpr"}}, {}))
    with pytest.raises(RecipeError, match="bad parameters for loss 'bpr'"):
        Recipe.from_resolved(
            resolve_recipe("bpr", {"bpr": {"loss": "bpr", "n_negatives": 1, "gamma": 1}}, {})
        )


@pytest.mark.parametrize("name", ["bpr", "directau", "directspec_plus"])
def test_recipe_decreases_its_loss_on_a_tiny_problem(name):
    generator = torch.Generator().manual_seed(0)
    users = torch.randint(0, 30, (600,), generator=generator)
    items = (users % 4) * 10 + torch.randint(0, 10, (600,), generator=generator)
    negatives = torch.randint(0, 40, (600, 1), generator=generator)
    user_table = torch.nn.Parameter(0.1 * torch.randn(30, 8, generator=generator))
    item_table = torch.nn.Parameter(0.1 * torch.randn(40, 8, generator=generator))
    recipe = Recipe.from_resolved(resolve_recipe(name, RECIPES, ADDONS))
    optimizer = torch.optim.Adam([user_table, item_table], lr=0.05)

    def step():
        batch = Batch(users, items, user_table[users], item_table[items], negatives, item_table[negatives],
                      user_table, item_table)  # fmt: skip
        loss = sum(recipe.parts(batch, warm=False).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    first = step()
    last = [step() for _ in range(100)][-1]
    assert last < first


def test_filter_point_reads_alpha_and_tau_with_the_losses_own_defaults():
    from specrec.losses.directspec import filter_point

    assert filter_point({"name": "directspec_plus", "alpha": 0.5}) == (0.5, 3.0)
    assert filter_point({"name": "directspec_plus", "tau0": 2.5, "tau1": 3.0}) == (1.0, None)  # adaptive
    assert filter_point({"name": "directspec", "alpha": 0.8}) == (0.8, None)
    assert filter_point({"name": "bpr"}) is None


def test_many_negatives_per_positive_have_autograds_values_bit_for_bit():
    """The CPU's own backward of the (B x n) per-positive dot products (no transposed copies of the negatives)
    gives exactly what autograd's einsum gives, so no run's numbers move."""
    from specrec.losses.bpr import _PerPositiveDots

    generator = torch.Generator().manual_seed(0)
    users, negatives = (
        torch.randn(512, 32, generator=generator),
        torch.randn(512, 16, 32, generator=generator),
    )
    grad = torch.randn(512, 16, generator=generator)
    results = []
    for dots in (lambda u, v: torch.einsum("bd,bnd->bn", u, v), _PerPositiveDots.apply):
        u, v = users.clone().requires_grad_(), negatives.clone().requires_grad_()
        scores = dots(u, v)
        scores.backward(grad)
        results.append((scores.detach(), u.grad, v.grad))
    assert all(torch.equal(mine, autograds) for mine, autograds in zip(*results, strict=True))
