"""LightGCN (He et al., SIGIR'20): free layer-0 embeddings smoothed over the user-item graph (RESEARCH §1.4).

With E⁰ the (|U|+|I|) x d table of layer-0 embeddings (users first, then items) and the bipartite adjacency

    A = [[0, R], [Rᵀ, 0]],   R[u, i] = 1 if (u, i) is a training edge (duplicates count once),
    Â = D^-1/2 A D^-1/2,     D = diag(row sums of A), no self loops; a node of degree 0 gets a zero row,

the final embeddings are

    E = Σ_{k=0..K} a_k Â^k E⁰,   a_k = 1/(K+1) ("mean", StableRankReg)  or  a_k = 1 ("sum", DirectSpec),

split back into the user table (first |U| rows) and the item table. Scores are dot products, as for MF.

Â is built once and kept in CSR form as buffers (moved by `.to(device)`, left out of the state dict since it
is derived from the training split); every layer is one sparse @ dense product, so memory is O(nnz + N·d),
never O(N²). E = P E⁰ with P = Σ_k a_k Â^k symmetric, so the backward pass is P applied to the gradient: K
CSR products each way and no layer kept (autograd would build Âᵀ instead, about 10x slower on a CPU).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from specrec.models import MODELS

COMBINATIONS = ("mean", "sum")


def normalised_adjacency(
    train_users: torch.Tensor, train_items: torch.Tensor, n_users: int, n_items: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR parts (crow_indices, col_indices, values) of Â = D^-1/2 A D^-1/2 over users + items.

    Nodes 0..n_users-1 are the users, n_users + i is item i. Built on the device of the inputs.
    """
    users = torch.as_tensor(train_users).to(torch.int64).flatten()
    items = torch.as_tensor(train_items).to(device=users.device, dtype=torch.int64).flatten()
    if users.numel() != items.numel():
        raise ValueError(f"train_users ({users.numel()}) and train_items ({items.numel()}) differ in length")
    if users.numel() and (int(users.min()) < 0 or int(users.max()) >= n_users):
        raise ValueError(f"train_users must lie in [0, {n_users})")
    if items.numel() and (int(items.min()) < 0 or int(items.max()) >= n_items):
        raise ValueError(f"train_items must lie in [0, {n_items})")
    # unique edges, sorted by (user, item) for the user rows and by (item, user) for the item rows
    by_user = torch.unique(users * n_items + items)
    u, i = by_user // n_items, by_user % n_items
    by_item = torch.unique(i * n_users + u)
    iu, ii = by_item % n_users, by_item // n_users
    degree = torch.cat([torch.bincount(u, minlength=n_users), torch.bincount(i, minlength=n_items)])
    scale = torch.where(degree > 0, degree.double().clamp(min=1).rsqrt(), 0.0)
    rows = torch.cat([u, n_users + ii])
    cols = torch.cat([n_users + i, iu])
    values = (scale[rows] * scale[cols]).float()
    crow = torch.cat([degree.new_zeros(1), torch.cumsum(degree, 0)])
    if crow[-1] < 2**31:  # 32-bit indices: less to read per non-zero, about 20 % faster products on a CPU
        crow, cols = crow.int(), cols.int()
    return crow, cols, values


def smooth(adjacency: torch.Tensor, x: torch.Tensor, n_layers: int, mean: bool) -> torch.Tensor:
    """a Σ_{k=0..K} Â^k x without keeping the layers: each product is written into one of two reused
    buffers (`mm(out=...)`), which on a CPU halves its time against `Â @ x` and its fresh allocations."""
    total = x.clone()
    buffers = [torch.empty_like(x) for _ in range(min(n_layers, 2))]
    source = x
    for layer in range(n_layers):
        target = buffers[layer % 2]
        torch.mm(adjacency, source, out=target)
        total += target
        source = target
    return total.div_(n_layers + 1) if mean else total


class _Smooth(torch.autograd.Function):
    """E = a Σ_k Â^k E⁰ is linear in E⁰ with a symmetric operator, so its backward is the same smoothing of
    the gradient: K sparse products each way, and no layer kept for the backward pass."""

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor, n_layers: int, mean: bool) -> torch.Tensor:
        ctx.save_for_backward(adjacency)
        ctx.n_layers, ctx.mean = n_layers, mean
        return smooth(adjacency, x, n_layers, mean)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor, None, None]:
        (adjacency,) = ctx.saved_tensors
        return None, smooth(adjacency, grad.contiguous(), ctx.n_layers, ctx.mean), None, None


@MODELS.register("lightgcn")
class LightGCN(nn.Module):
    """LightGCN on the training graph; `embedding.weight` is E⁰ (users first), `forward()` the final tables.

    Constructor kwargs beyond MF's: train_users / train_items (the training edges, required), n_layers (K,
    default 3; 0 gives MF) and layer_combination ("mean": a_k = 1/(K+1), or "sum": a_k = 1).
    """

    trainable = True
    stackable = True  # its forward gives the tables: runs of it can train as a stack

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 64,
        init_std: float = 0.1,
        train_users: torch.Tensor | None = None,
        train_items: torch.Tensor | None = None,
        n_layers: int = 3,
        layer_combination: str = "mean",
        **_: object,
    ):
        super().__init__()
        if train_users is None or train_items is None:
            raise ValueError("lightgcn needs the training edges: pass both train_users and train_items")
        if int(n_layers) < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        if layer_combination not in COMBINATIONS:
            raise ValueError(f"layer_combination must be one of {COMBINATIONS}, got {layer_combination!r}")
        self.n_users, self.n_items = n_users, n_items
        self.n_layers, self.layer_combination = int(n_layers), layer_combination
        self.embedding = nn.Embedding(n_users + n_items, dim)
        nn.init.normal_(self.embedding.weight, std=init_std)
        crow, cols, values = normalised_adjacency(train_users, train_items, n_users, n_items)
        # Plain tensors (not one sparse tensor) so that deepcopy and pickling of the module work as well.
        self.register_buffer("adj_crow", crow, persistent=False)
        self.register_buffer("adj_col", cols, persistent=False)
        self.register_buffer("adj_values", values, persistent=False)

    @property
    def adjacency(self) -> torch.Tensor:
        """Â as a sparse CSR tensor on the model's device (a view of the buffers, no copy)."""
        n = self.n_users + self.n_items
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                self.adj_crow,
                self.adj_col,
                self.adj_values.to(self.embedding.weight.dtype),
                size=(n, n),
                check_invariants=False,
            )

    def propagate(self) -> list[torch.Tensor]:
        """[E⁰, Â E⁰, ..., Â^K E⁰], each (n_users + n_items) x dim (for inspection; training uses forward)."""
        adjacency = self.adjacency
        layers = [self.embedding.weight]
        for _ in range(self.n_layers):
            layers.append(adjacency @ layers[-1])
        return layers

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.layer_combination == "mean"
        combined = _Smooth.apply(self.adjacency, self.embedding.weight, self.n_layers, mean)
        return combined[: self.n_users], combined[self.n_users :]
