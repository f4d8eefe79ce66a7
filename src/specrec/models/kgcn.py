"""KGCN (Wang et al., WWW'19), exactly as its TF code computes it (RESEARCH §2.3), in PyTorch.

Every KG entity e has K sampled neighbours (adj_entity[e, k], via relation adj_relation[e, k]), fixed once
(specrec.kg.neighbour_sample). Items are the entities 0..n_items-1. For a user u and an entity v, one
iteration is

    π(u, r)  = mean_d(u ⊙ r) = uᵀr / d                          (the code's mean; the paper's inner product)
    π̃_k      = softmax_k π(u, r_k)                              over the K sampled neighbours of v
    v_N      = mean_k π̃_k e_k                                   (the code's mean, not a sum)
    sum:        h = act(W (v + v_N) + b)
    concat:     h = act(W [v; v_N] + b)
    neighbour:  h = act(W v_N + b)

iterated H times inward from the H-hop tree of sampled neighbours (iteration t has its own W_t, b_t; every
entity of hop h < H - t + 1 is updated from its hop h + 1 children), ReLU inside and tanh at the last
iteration. The score is the logit s(u, v) = uᵀ v^u, ŷ = σ(s). Embeddings are N(0, init_std²) like the other
models here; W_t is Xavier-uniform and b_t zero (the TF code's initialisers).

`score_pairs` expands the tree per (user, item) pair, as the TF code and RecBole do. `score_block` ranks every
item for a block of users without that K^H-fold tree, with the same result up to rounding:
- the iteration-t representation of an entity depends only on (user, entity), so it is computed once per
  user over the deduplicated receptive field;
- π(u, r) depends on nothing but the user and the relation id, so with x_r = exp(π(u, r) - max_r' π(u, r'))
  the softmax is π̃_k = x_{r_k} / Σ_j x_{r_j} and every entity's normaliser is one product counts @ x;
- the first iteration's inputs are shared by all users and enter linearly, so W_1 is applied before the
  user-specific mean and the whole first iteration becomes one GEMM with x (first_iteration_matrix, a
  matrix of |entities of the first level| x d x (n_relations + 1) floats, built once per call).
Users whose relation logits spread too far for one shift per user (SPREAD_LIMIT) go through score_pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from specrec.models import MODELS

AGGREGATORS = ("sum", "concat", "neighbour")
EVAL_FLOATS = 2**24  # default cap on the floats of score_block's live intermediates per chunk (64 MiB)
SPREAD_LIMIT = 60.0  # exp(-60) ~ 1e-26: a normal float32 with room to spare (see relation_weights)


def relation_logits(user_emb: torch.Tensor, relation_table: torch.Tensor) -> torch.Tensor:
    """π(u, r) = mean_d(u ⊙ r) for every user row and every relation: (B x (n_relations + 1))."""
    return user_emb @ relation_table.T / user_emb.shape[-1]


def activate(x: torch.Tensor, last: bool, inplace: bool = False) -> torch.Tensor:
    """ReLU inside, tanh at the last iteration (the TF code's act)."""
    if last:
        return x.tanh_() if inplace else torch.tanh(x)
    return x.relu_() if inplace else F.relu(x)


def neighbourhood(attention: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """v_N = mean_k π̃_k e_k: attention (... x K), neighbours (... x K x d) -> (... x d)."""
    return (attention.unsqueeze(-1) * neighbours).mean(-2)


class Aggregator(nn.Module):
    """One KGCN iteration before its activation: W(v + v_N) + b, W[v; v_N] + b or W v_N + b."""

    def __init__(self, dim: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.linear = nn.Linear(2 * dim if kind == "concat" else dim, dim)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, self_vectors: torch.Tensor, neighbourhood_vectors: torch.Tensor) -> torch.Tensor:
        if self.kind == "sum":
            return self.linear(self_vectors + neighbourhood_vectors)
        if self.kind == "concat":
            return self.linear(torch.cat([self_vectors, neighbourhood_vectors], dim=-1))
        return self.linear(neighbourhood_vectors)

    def forward_columns(
        self, self_vectors: torch.Tensor, neighbourhood_vectors: torch.Tensor
    ) -> torch.Tensor:
        """The same map on column vectors (n x d x b), score_block's layout, as batched GEMMs.

        baddbmm with the weight expanded over the batch (a stride-0 view) avoids the two transposed copies
        that torch.matmul(W, x) makes of a 3-d x.
        """
        w_self, w_neighbour = self.split_weights()
        n, dim, columns = neighbourhood_vectors.shape
        bias = self.linear.bias.view(1, dim, 1).expand(n, dim, columns)
        inputs = self_vectors + neighbourhood_vectors if self.kind == "sum" else neighbourhood_vectors
        out = torch.baddbmm(bias, w_neighbour.expand(n, dim, dim), inputs)
        if self.kind == "concat":
            out.baddbmm_(w_self.expand(n, dim, dim), self_vectors)
        return out

    def split_weights(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(W_self, W_neighbour) with W·input = W_self v + W_neighbour v_N; W_self is None for "neighbour"."""
        weight = self.linear.weight
        if self.kind == "sum":
            return weight, weight
        if self.kind == "concat":
            dim = weight.shape[0]
            return weight[:, :dim], weight[:, dim:]
        return None, weight


@dataclass
class Level:
    """What one iteration of score_block computes: a representation for each of `entities` (|S| of them).

    self_pos / neighbour_pos (|S|, |S| x K) locate each entity and its sampled neighbours among the previous
    iteration's outputs (global entity ids for the first iteration); relations (|S| x K) are the neighbours'
    relation ids and counts (|S| x (n_relations + 1)) how often each relation id occurs in an entity's row.
    """

    entities: torch.Tensor
    self_pos: torch.Tensor
    neighbour_pos: torch.Tensor
    relations: torch.Tensor
    counts: torch.Tensor


def receptive_levels(
    adj_entity: torch.Tensor,
    adj_relation: torch.Tensor,
    targets: torch.Tensor,
    n_hops: int,
    n_relation_ids: int,
    dtype: torch.dtype = torch.float32,
) -> list[Level]:
    """The H levels of score_block, first iteration first; the last level's entities are the targets.

    field_h = the entities within h sampled hops of the targets (field_0 = targets); iteration t computes
    field_{H-t} from field_{H-t+1}, so each entity is computed once however many paths lead to it.
    """
    fields = [targets]
    for _ in range(n_hops - 1):
        fields.append(torch.unique(torch.cat([fields[-1], adj_entity[fields[-1]].flatten()])))
    levels, previous = [], None
    for entities in reversed(fields):
        relations = adj_relation[entities]
        counts = torch.zeros(entities.numel(), n_relation_ids, dtype=dtype, device=entities.device)
        counts.scatter_add_(1, relations, torch.ones_like(relations, dtype=dtype))
        levels.append(
            Level(
                entities=entities,
                self_pos=locate(entities, previous),
                neighbour_pos=locate(adj_entity[entities], previous),
                relations=relations,
                counts=counts,
            )
        )
        previous = entities
    return levels


def locate(ids: torch.Tensor, among: torch.Tensor | None) -> torch.Tensor:
    """Positions of `ids` in `among` (sorted: fields come from torch.unique); the ids if among is None."""
    return ids if among is None else torch.searchsorted(among, ids)


def relation_weights(logits: torch.Tensor) -> torch.Tensor:
    """x_r = exp(π(u, r) - max_r' π(u, r')): ((n_relations + 1) x b) from the (b x (n_relations + 1)) logits.

    The softmax over an entity's K neighbours is then π̃_k = x_{r_k} / Σ_j x_{r_j}, with one shift per user
    instead of one per entity. It stays exact while exp(-spread) is a normal float with room to spare,
    spread = max_r π(u, r) - min_r π(u, r) <= SPREAD_LIMIT; score_block scores other users through
    score_pairs.
    """
    return torch.exp(logits - logits.max(1, keepdim=True).values).T.contiguous()


@dataclass
class BlockPlan:
    """score_block's levels and the first iteration's user-independent matrix (see first_iteration_matrix)."""

    levels: list[Level]
    first: torch.Tensor

    @property
    def widest(self) -> int:
        return max(level.entities.numel() for level in self.levels)


@MODELS.register("kgcn")
class KGCN(nn.Module):
    """KGCN with user, entity and relation embeddings and one Aggregator per iteration.

    Constructor kwargs beyond MF's: adj_entity / adj_relation ((n_entities x K) int64 sampled neighbours and
    their relation ids in [0, n_relations]; id n_relations is the "self" relation of isolated entities;
    required), n_relations (default: the largest relation id in adj_relation), n_hops (H, default 2),
    aggregator ("sum", "concat" or "neighbour") and eval_floats (score_block's memory cap, see there).
    """

    trainable = True
    needs_kg = True  # the training job loads the dataset's KG and passes its sampled neighbourhoods
    job_options = (
        "n_neighbours",
    )  # neighbours sampled per entity by the training job (KGCN's construct_adj)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 32,
        init_std: float = 0.1,
        adj_entity: torch.Tensor | None = None,
        adj_relation: torch.Tensor | None = None,
        n_relations: int | None = None,
        n_hops: int = 2,
        aggregator: str = "sum",
        eval_floats: int = EVAL_FLOATS,
        **_: object,
    ):
        super().__init__()
        adj_entity, adj_relation, n_relations = check_adjacency(
            adj_entity, adj_relation, n_relations, n_items
        )
        if int(n_hops) < 1:
            raise ValueError(f"n_hops must be >= 1, got {n_hops}")
        if aggregator not in AGGREGATORS:
            raise ValueError(f"aggregator must be one of {AGGREGATORS}, got {aggregator!r}")
        self.n_users, self.n_items, self.n_hops = n_users, n_items, int(n_hops)
        self.n_neighbours, self.eval_floats = adj_entity.shape[1], int(eval_floats)
        self.user = nn.Embedding(n_users, dim)
        self.entity = nn.Embedding(adj_entity.shape[0], dim)
        self.relation = nn.Embedding(n_relations + 1, dim)
        for table in (self.user, self.entity, self.relation):
            nn.init.normal_(table.weight, std=init_std)
        self.aggregators = nn.ModuleList(Aggregator(dim, aggregator) for _ in range(self.n_hops))
        # derived from the KG, not learned: moved by .to(device), left out of the state dict
        self.register_buffer("adj_entity", adj_entity, persistent=False)
        self.register_buffer("adj_relation", adj_relation, persistent=False)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The user table and the items' own entity embeddings (entity id == item id)."""
        return self.user.weight, self.entity.weight[: self.n_items]

    # ---- training: one receptive-field tree per (user, item) pair ----

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """s(u, v) = uᵀ v^u for each pair: (B,) logits."""
        user_emb = self.user.weight[users]
        return (user_emb * self.item_representation(user_emb, items)).sum(-1)

    def item_representation(self, user_emb: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """v^u (B x d) from the H-hop tree of each pair: hop h holds K^h entities reached by K^h relations."""
        batch, k = items.numel(), self.n_neighbours
        entities, relations = [items.reshape(batch, 1)], []
        for _ in range(self.n_hops):
            relations.append(self.adj_relation[entities[-1]].reshape(batch, -1))
            entities.append(self.adj_entity[entities[-1]].reshape(batch, -1))
        logits = relation_logits(user_emb, self.relation.weight)
        attention = [F.softmax(logits.gather(1, r).reshape(batch, -1, k), dim=-1) for r in relations]
        vectors = [self.entity.weight[e] for e in entities]
        for t, aggregator in enumerate(self.aggregators):
            last = t == self.n_hops - 1
            vectors = [
                activate(
                    aggregator(vectors[h], neighbourhood(attention[h], self.by_parent(vectors[h + 1]))), last
                )
                for h in range(self.n_hops - t)
            ]
        return vectors[0].reshape(batch, -1)

    def by_parent(self, vectors: torch.Tensor) -> torch.Tensor:
        """Hop h + 1 vectors (B x K^(h+1) x d) grouped by their hop-h parent: (B x K^h x K x d)."""
        return vectors.reshape(vectors.shape[0], -1, self.n_neighbours, vectors.shape[-1])

    # ---- full ranking: every item for a block of users ----

    @torch.no_grad()
    def score_block(self, users: torch.Tensor) -> torch.Tensor:
        """(B x n_items) logits s(u, v) for every item, equal to score_pairs on every pair.

        Users go in chunks sized so that a chunk's live intermediates, about 3 x (entities of the widest
        level) x d floats per user, stay under `eval_floats` (one user at least).
        """
        plan = self.block_plan()
        chunk = max(1, self.eval_floats // (3 * plan.widest * self.entity.embedding_dim))
        scores = torch.cat([self.score_users(block, plan) for block in users.split(chunk)])
        return self.rescore_extreme_users(users, scores)

    def block_plan(self) -> BlockPlan:
        items = torch.arange(self.n_items, device=self.adj_entity.device)
        levels = receptive_levels(
            self.adj_entity,
            self.adj_relation,
            items,
            self.n_hops,
            self.relation.num_embeddings,
            self.entity.weight.dtype,
        )
        return BlockPlan(levels, self.first_iteration_matrix(levels[0]))

    def first_iteration_matrix(self, level: Level) -> torch.Tensor:
        """Q ((|S|·d) x (n_relations + 1)) with first-iteration pre-activations z = (Q x) / (counts x).

        With π̃_k = x_{r_k} / Σ_j x_{r_j} (relation_weights) and the first iteration's inputs shared by every
        user, W_self v + b + W_nbr mean_k π̃_k e_k = Σ_r x_r Q[v, :, r] / Σ_r x_r counts[v, r] for

            Q[v, :, r] = counts[v, r] (W_self v + b) + Σ_{k: r_k = r} W_nbr e_k / K,

        so the per-user work of the first iteration is one GEMM with the users' relation weights x.
        """
        w_self, w_neighbour = self.aggregators[0].split_weights()
        table, dim = self.entity.weight, self.entity.embedding_dim
        own = self.aggregators[0].linear.bias.expand(level.entities.numel(), dim)
        if w_self is not None:
            own = own + table[level.entities] @ w_self.T
        projected = table[level.neighbour_pos] @ w_neighbour.T / self.n_neighbours  # |S| x K x d
        q = level.counts.unsqueeze(-1) * own.unsqueeze(1)  # |S| x (R + 1) x d
        q.scatter_add_(1, level.relations.unsqueeze(-1).expand_as(projected), projected)
        return q.transpose(1, 2).reshape(-1, q.shape[1])

    def score_users(self, users: torch.Tensor, plan: BlockPlan) -> torch.Tensor:
        """(b x n_items) logits for a chunk of users; inside, entity-major columns (|S| x d x b).

        Entity-major rows of d·b floats make every neighbour gather a copy of contiguous blocks.
        """
        user_emb = self.user.weight[users]
        weights = relation_weights(relation_logits(user_emb, self.relation.weight))  # (R + 1) x b
        hidden = None
        for t, (level, aggregator) in enumerate(zip(plan.levels, self.aggregators, strict=True)):
            normaliser = (level.counts @ weights).unsqueeze(1)  # |S| x 1 x b: Σ_k x_{r_k}
            if t == 0:
                z = (plan.first @ weights).view(level.entities.numel(), -1, users.numel()).div_(normaliser)
            else:
                mean = self.weighted_neighbour_sum(hidden, level, weights).div_(
                    normaliser * self.n_neighbours
                )
                z = aggregator.forward_columns(hidden.index_select(0, level.self_pos), mean)
            hidden = activate(z, last=t == self.n_hops - 1, inplace=True)
        return hidden.mul_(user_emb.T).sum(1).T

    def weighted_neighbour_sum(
        self, hidden: torch.Tensor, level: Level, weights: torch.Tensor
    ) -> torch.Tensor:
        """Σ_k x_{r_k} h_{e_k} (|S| x d x b); one vectorised pass per neighbour slot (K of them)."""
        total = None
        for slot in range(self.n_neighbours):
            slot_weights = weights[level.relations[:, slot]].unsqueeze(1)  # |S| x 1 x b
            neighbours = hidden.index_select(0, level.neighbour_pos[:, slot])
            total = (
                neighbours.mul_(slot_weights) if total is None else total.addcmul_(slot_weights, neighbours)
            )
        return total

    def rescore_extreme_users(self, users: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Rows of users whose relation logits spread beyond SPREAD_LIMIT, recomputed by score_pairs."""
        logits = relation_logits(self.user.weight[users], self.relation.weight)
        extreme = torch.nonzero(logits.max(1).values - logits.min(1).values > SPREAD_LIMIT).squeeze(1)
        if extreme.numel() == 0:
            return scores
        items = torch.arange(self.n_items, device=scores.device)
        tree = sum(self.n_neighbours**hop for hop in range(self.n_hops + 1)) * self.entity.embedding_dim
        for rows in extreme.split(max(1, self.eval_floats // (tree * self.n_items))):
            pair_users = users[rows].repeat_interleave(self.n_items)
            pairs = self.score_pairs(pair_users, items.repeat(rows.numel()))
            scores[rows] = pairs.view(rows.numel(), self.n_items)
        return scores


def check_adjacency(adj_entity, adj_relation, n_relations, n_items) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The sampled neighbourhoods as validated int64 tensors, and the number of (real) relations."""
    if adj_entity is None or adj_relation is None:
        raise ValueError(
            "kgcn needs the sampled KG neighbourhoods: pass adj_entity and adj_relation, (n_entities x K) "
            "int64 tensors (see specrec.kg.neighbour_sample)"
        )
    adj_entity = torch.as_tensor(adj_entity).to(torch.int64)
    adj_relation = torch.as_tensor(adj_relation).to(torch.int64)
    if adj_entity.ndim != 2 or adj_entity.shape != adj_relation.shape or adj_entity.shape[1] < 1:
        raise ValueError(
            f"adj_entity {tuple(adj_entity.shape)} and adj_relation {tuple(adj_relation.shape)} must both be "
            "(n_entities x K) with K >= 1"
        )
    n_entities = adj_entity.shape[0]
    if n_entities < n_items:
        raise ValueError(f"the KG has {n_entities} entities but items 0..{n_items - 1} must all be entities")
    if int(adj_entity.min()) < 0 or int(adj_entity.max()) >= n_entities:
        raise ValueError(f"adj_entity ids must lie in [0, {n_entities})")
    if n_relations is None:
        n_relations = int(adj_relation.max())
    if int(adj_relation.min()) < 0 or int(adj_relation.max()) > n_relations:
        raise ValueError(
            f"adj_relation ids must lie in [0, {n_relations}] (n_relations is the self relation)"
        )
    return adj_entity.contiguous(), adj_relation.contiguous(), int(n_relations)
