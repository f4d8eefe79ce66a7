"""Spectrum diagnostics of embedding tables (RESEARCH.md §1.2-1.3).

All functions take an (n x d) table as a torch tensor (or anything `torch.as_tensor` accepts) and stay
differentiable where that makes sense, so the same `stable_rank` serves as a logged diagnostic and,
negated, as the warm-start regulariser of Loveland et al. (WWW 2025).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from specrec import io


def _as_matrix(table) -> torch.Tensor:
    matrix = torch.as_tensor(table)
    if matrix.ndim != 2:
        raise ValueError(f"expected an (n x d) table, got shape {tuple(matrix.shape)}")
    return matrix if matrix.is_floating_point() else matrix.float()


def singular_values(table) -> torch.Tensor:
    """Singular values sigma_1 >= ... >= sigma_min(n,d), exact (`torch.linalg.svdvals`)."""
    return torch.linalg.svdvals(_as_matrix(table))


def stable_rank(table) -> torch.Tensor:
    """srank(E) = ||E||_F^2 / ||E||_2^2 = sum_k sigma_k^2 / sigma_1^2, in [1, rank(E)].

    A smooth lower bound of the rank: it is d when all singular values are equal and 1 when one
    direction holds all the energy (complete collapse).
    """
    sigma = singular_values(table)
    return (sigma.square().sum() / sigma[0].square().clamp_min(1e-24)).clamp_min(1.0)


def normalised_stable_rank(table) -> torch.Tensor:
    """Stable rank of the row-normalised table divided by d, in (0, 1] (the StableRankReg convention)."""
    matrix = _as_matrix(table)
    return stable_rank(F.normalize(matrix, dim=1)) / matrix.shape[1]


def effective_rank(table) -> torch.Tensor:
    """erank(E) = exp(H(p)), p_k = sigma_k / sum_j sigma_j (Roy & Vetterli, 2007), in [1, rank(E)]."""
    sigma = singular_values(table)
    p = sigma / sigma.sum().clamp_min(1e-24)
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum())


def uniformity(table, t: float = 2.0, max_rows: int = 4096, seed: int = 0) -> torch.Tensor:
    """L_unif = log mean_{x != x'} exp(-t ||x~ - x~'||^2) on row-normalised embeddings (Wang & Isola, 2020).

    Lower is more uniform on the hypersphere. Rows beyond `max_rows` are subsampled (seeded) because the
    pairwise term is quadratic.
    """
    matrix = _as_matrix(table)
    if matrix.shape[0] > max_rows:
        generator = torch.Generator().manual_seed(seed)
        matrix = matrix[torch.randperm(matrix.shape[0], generator=generator)[:max_rows].to(matrix.device)]
    distances = torch.pdist(F.normalize(matrix, dim=1)).square()
    return torch.logsumexp(-t * distances, dim=0) - np.log(distances.numel())


def alignment(user_table, item_table, users, items, alpha: float = 2.0) -> torch.Tensor:
    """L_align = mean_{(u,i)} ||u~ - i~||^alpha over positive pairs (Wang & Isola, 2020); lower: better."""
    u = F.normalize(_as_matrix(user_table)[torch.as_tensor(users, dtype=torch.long)], dim=1)
    i = F.normalize(_as_matrix(item_table)[torch.as_tensor(items, dtype=torch.long)], dim=1)
    return (u - i).norm(dim=1).pow(alpha).mean()


def table_summary(table) -> dict:
    """Everything the spectrum figures and tables need about one table, as plain Python numbers."""
    with torch.no_grad():
        matrix = _as_matrix(table).double()
        return {
            "singular_values": singular_values(matrix).tolist(),
            "stable_rank": float(stable_rank(matrix)),
            "stable_rank_normalised": float(normalised_stable_rank(matrix)),
            "effective_rank": float(effective_rank(matrix)),
            "uniformity": float(uniformity(matrix)),
        }


def analyse_embeddings(user_table, item_table, users, items) -> dict:
    """Spectrum of both tables plus the alignment of the given (held-out) interacting pairs."""
    user_table, item_table = _as_matrix(user_table).double(), _as_matrix(item_table).double()
    with torch.no_grad():
        return {
            "dim": int(user_table.shape[1]),
            "user": table_summary(user_table),
            "item": table_summary(item_table),
            "alignment": float(alignment(user_table, item_table, users, items)),
        }


def write_spectrum(embeddings_path, test_path, out_path, identity: dict) -> dict:
    """spectrum.json of one run: its identity, both tables' spectra, alignment on the held-out test pairs."""
    with np.load(embeddings_path) as arrays:
        user_table, item_table = torch.from_numpy(arrays["user"]), torch.from_numpy(arrays["item"])
    test = pd.read_parquet(test_path, columns=["user", "item"])
    # copies: a parquet column's array is read-only, and torch warns when it wraps one
    users, items = (test[column].to_numpy(np.int64, copy=True) for column in ("user", "item"))
    result = identity | analyse_embeddings(user_table, item_table, users, items)
    io.write_json(out_path, result)
    return result
