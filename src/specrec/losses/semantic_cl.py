"""Item-item semantic contrastive loss L_cl of paper 1 (arXiv 2403.18667; formulation of RESEARCH.md §2.3).

The joint objective is L = L_ctr + λ·L_cl: this module is the unweighted L_cl, computed per mini-batch on
the batch's positive items as anchors; the recipe multiplies it by λ. Pairs come from
specrec.text.pairs (metadata, synopsis kNN or random).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from specrec.losses import REGULARIZERS, Batch, TermContext
from specrec.text.pairs import (
    METADATA_FIELDS,
    ItemPairs,
    attribute_incidence,
    metadata_pairs,
    random_pairs,
    sample,
    text_knn_pairs,
)

INPUTS = ("ids+text", "ids", "text")


def info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    valid: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """mean_a -log exp(cos(h_a,h_p)/τ) / (exp(cos(h_a,h_p)/τ) + Σ_{n valid} exp(cos(h_a,h_n)/τ)).

    Rows are unit vectors, so a dot product is the cosine. anchor, positive: (B x d); negatives (B x n x d);
    valid (B x n) drops the negatives the sampler could not make share-nothing (they get logit -inf).
    """
    positive_logit = (anchor * positive).sum(-1, keepdim=True)
    negative_logits = torch.einsum("bd,bnd->bn", anchor, negatives).masked_fill(~valid, -torch.inf)
    logits = torch.cat([positive_logit, negative_logits], dim=1) / temperature
    return -F.log_softmax(logits, dim=1)[:, 0].mean()


class SemanticContrast(torch.nn.Module):
    """L_cl with item representations h_i = normalise(e_i + P t_i) (paper 1's content contrastive task).

    e_i = batch.item_table[i] is the learnable item (entity) embedding; t_i the frozen synopsis embedding
    (a non-persistent buffer: not trained, not saved in checkpoints); P a bias-free Linear(text_dim -> dim).
    A single linear map is the smallest alignment of the text space with the ID space; a bias would add one
    shared vector to every item and pull all of them together, and an MLP would let P fit the contrastive
    task on its own instead of shaping e_i. `inputs`: "ids+text" (the paper), "ids" (h_i = normalise(e_i),
    the no-text ablation; text_emb is ignored), "text" (h_i = normalise(P t_i): trains P only, so it only
    changes a model whose scores use P). Parameters (P) must join the optimiser and the module must be
    moved to the training device; the pairs follow the batch's device on first use.
    """

    on_batch = True

    def __init__(
        self,
        pairs: ItemPairs,
        text_emb: torch.Tensor | None,
        dim: int,
        temperature: float = 0.1,
        n_negatives: int = 16,
        inputs: str = "ids+text",
        rounds: int = 8,
    ) -> None:
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
        if temperature <= 0 or n_negatives < 1:
            raise ValueError(f"need temperature > 0 and n_negatives >= 1, got {temperature}, {n_negatives}")
        self.pairs = pairs
        self.temperature = float(temperature)
        self.n_negatives = int(n_negatives)
        self.inputs = inputs
        self.rounds = int(rounds)
        self.project = None
        if "text" in inputs:
            if text_emb is None or text_emb.shape[0] != pairs.n_items:
                raise ValueError(f"inputs {inputs!r} need text_emb with one row per item ({pairs.n_items})")
            self.register_buffer("text", torch.as_tensor(text_emb).detach().float(), persistent=False)
            self.project = torch.nn.Linear(self.text.shape[1], dim, bias=False)

    def represent(self, ids: torch.Tensor, item_table: torch.Tensor) -> torch.Tensor:
        """h_i for the items `ids`: normalise(e_i + P t_i), or one of the two parts alone."""
        parts = []
        if self.inputs != "text":
            parts.append(item_table[ids])
        if self.project is not None:
            parts.append(self.project(self.text[ids]))
        return F.normalize(sum(parts), dim=-1)

    def _pairs_on(self, device: torch.device) -> ItemPairs:
        if self.pairs.device != device:
            self.pairs = self.pairs.to(device)
        return self.pairs

    def forward(self, batch: Batch) -> torch.Tensor:
        """L_cl over the unique positive items of the batch that have a positive pair (0 if none has)."""
        anchors = torch.unique(batch.items)
        pairs = self._pairs_on(anchors.device)
        drawn = sample(pairs, anchors, self.n_negatives, getattr(batch, "generator", None), self.rounds)
        b = drawn.anchors.numel()
        if b == 0:
            return batch.item_table.new_zeros(())
        # represent every distinct item once: anchors recur as other anchors' positives and negatives
        everything = torch.cat([drawn.anchors, drawn.positives, drawn.negatives.flatten()])
        ids, where = torch.unique(everything, return_inverse=True)
        h = self.represent(ids, batch.item_table)
        negatives = h[where[2 * b :]].view(b, self.n_negatives, -1)
        return info_nce(h[where[:b]], h[where[b : 2 * b]], negatives, drawn.valid, self.temperature)


PAIRINGS = ("metadata", "text_knn", "random")


@REGULARIZERS.register("semantic_cl")
def semantic_cl(
    context: TermContext,
    pairs: str = "metadata",
    fields: Sequence[str] = METADATA_FIELDS,
    min_overlap: int = 2,
    max_positives: int | None = None,
    k: int = 10,
    temperature: float = 0.1,
    n_negatives: int = 16,
    inputs: str = "ids+text",
    seed: int = 0,
) -> SemanticContrast:
    """The contrastive term of an add-on such as `{regularizer: semantic_cl, gamma: 0.1, pairs: metadata}`.

    pairs: "metadata" (share >= min_overlap values of `fields`; the paper), "text_knn" (the k nearest
    synopses; negatives share no metadata), "random" (as many random positives per item as metadata gives:
    the ablation that keeps the task but drops the semantics).
    """
    if pairs not in PAIRINGS:
        raise ValueError(f"pairs must be one of {', '.join(PAIRINGS)}, got {pairs!r}")
    items = context.items()
    text = context.text() if inputs != "ids" or pairs == "text_knn" else None
    if pairs == "text_knn":
        has_synopsis = torch.tensor(items.sort_values("item")["synopsis"].notna().to_numpy())
        attributes = attribute_incidence(items, fields)
        item_pairs = text_knn_pairs(text, k, items_with_text=has_synopsis, attributes=attributes)
    else:
        item_pairs = metadata_pairs(items, fields, min_overlap, max_positives)
        if pairs == "random":
            generator = torch.Generator().manual_seed(seed)
            item_pairs = random_pairs(item_pairs.n_items, item_pairs.positive_counts(), generator)
    return SemanticContrast(item_pairs, text, context.dim, temperature, n_negatives, inputs)


semantic_cl.builds_term = True
