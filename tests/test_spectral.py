import numpy as np
import pytest
import torch

from specrec import spectral


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 16)) @ np.diag(np.linspace(3, 0.1, 16))


def test_singular_values_match_numpy(table):
    ours = spectral.singular_values(torch.tensor(table)).numpy()
    assert np.allclose(ours, np.linalg.svd(table, compute_uv=False))


def test_stable_rank_matches_numpy(table):
    sigma = np.linalg.svd(table, compute_uv=False)
    assert float(spectral.stable_rank(torch.tensor(table))) == pytest.approx((sigma**2).sum() / sigma[0] ** 2)


def test_effective_rank_matches_numpy(table):
    sigma = np.linalg.svd(table, compute_uv=False)
    p = sigma / sigma.sum()
    assert float(spectral.effective_rank(torch.tensor(table))) == pytest.approx(
        np.exp(-(p * np.log(p)).sum())
    )


def test_rank_extremes():
    rank_one = np.outer(np.arange(1, 11), np.ones(8))
    assert float(spectral.stable_rank(torch.tensor(rank_one))) == pytest.approx(1.0)
    assert float(spectral.effective_rank(torch.tensor(rank_one))) == pytest.approx(1.0, abs=1e-6)
    orthogonal = np.eye(8)
    assert float(spectral.stable_rank(torch.tensor(orthogonal))) == pytest.approx(8.0)
    assert float(spectral.effective_rank(torch.tensor(orthogonal))) == pytest.approx(8.0)
    assert float(spectral.normalised_stable_rank(torch.tensor(orthogonal))) == pytest.approx(1.0)


def test_stable_rank_is_differentiable(table):
    x = torch.tensor(table, requires_grad=True)
    spectral.stable_rank(x).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_uniformity_and_alignment_hand_computed():
    # two antipodal unit vectors: ||x - x'||^2 = 4 -> log exp(-8) = -8
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert float(spectral.uniformity(x)) == pytest.approx(-8.0)
    # identical directions align perfectly; orthogonal ones have ||u - i||^2 = 2
    users = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    items = torch.tensor([[5.0, 0.0], [1.0, 0.0]])
    assert float(spectral.alignment(users, items, [0], [0])) == pytest.approx(0.0)
    assert float(spectral.alignment(users, items, [0, 1], [0, 1])) == pytest.approx(1.0)


def test_collapsed_table_is_less_uniform(table):
    collapsed = np.outer(np.ones(200), np.ones(16)) + 1e-3 * table
    assert float(spectral.uniformity(torch.tensor(collapsed))) > float(
        spectral.uniformity(torch.tensor(table))
    )
