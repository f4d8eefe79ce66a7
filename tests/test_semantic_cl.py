import math

import numpy as np
import pandas as pd
import pytest
import torch

from specrec.losses import Batch, TermContext
from specrec.losses.semantic_cl import SemanticContrast, info_nce
from specrec.recipes import RecipeError, build_term
from specrec.text.pairs import metadata_pairs, sample

DIM, TEXT_DIM, TAU = 4, 6, 0.2


def invented_pairs():
    """Eight invented items in two genre families; item 7 shares nothing (no positive, always a negative)."""
    genres = [["A"], ["A", "B"], ["B"], ["A"], ["C"], ["C", "D"], ["D"], ["E"]]
    return metadata_pairs(pd.DataFrame({"item": range(8), "genres": genres}), ("genres",), 1)


def tables(seed=0):
    generator = torch.Generator().manual_seed(seed)
    item_table = torch.randn(8, DIM, generator=generator).requires_grad_()
    text = torch.nn.functional.normalize(torch.randn(8, TEXT_DIM, generator=generator), dim=1)
    return item_table, text


def make_batch(items: list[int], item_table: torch.Tensor, seed: int) -> Batch:
    items = torch.tensor(items)
    batch = Batch(
        users=torch.zeros_like(items),
        items=items,
        user_emb=torch.zeros(len(items), DIM),
        item_emb=item_table[items],
        negatives=None,
        negative_emb=None,
        user_table=torch.zeros(1, DIM),
        item_table=item_table,
    )
    batch.generator = torch.Generator().manual_seed(seed)
    return batch


def reference_loss(drawn, represent) -> torch.Tensor:
    """-mean_a log exp(s_ap/τ) / (exp(s_ap/τ) + Σ_valid exp(s_an/τ)), one term at a time."""
    total = 0.0
    for row, (a, p) in enumerate(zip(drawn.anchors.tolist(), drawn.positives.tolist(), strict=True)):
        positive = torch.exp(represent(a) @ represent(p) / TAU)
        denominator = positive
        for n, valid in zip(drawn.negatives[row].tolist(), drawn.valid[row].tolist(), strict=True):
            if valid:
                denominator = denominator + torch.exp(represent(a) @ represent(n) / TAU)
        total = total - torch.log(positive / denominator)
    return total / drawn.anchors.numel()


def test_info_nce_matches_a_loop_and_ignores_masked_negatives():
    generator = torch.Generator().manual_seed(1)
    unit = torch.nn.functional.normalize(torch.randn(3 + 3 + 6, DIM, generator=generator), dim=1)
    anchor, positive, negatives = unit[:3], unit[3:6], unit[6:].view(3, 2, DIM)
    valid = torch.tensor([[True, True], [True, False], [False, False]])
    expected = 0.0
    for b in range(3):
        logits = [float(anchor[b] @ positive[b]) / TAU]
        logits += [float(anchor[b] @ negatives[b, j]) / TAU for j in range(2) if valid[b, j]]
        expected -= logits[0] - math.log(sum(math.exp(x) for x in logits))
    value = info_nce(anchor, positive, negatives, valid, TAU)
    assert value.item() == pytest.approx(expected / 3, rel=1e-5)


def test_value_and_gradients_match_a_direct_loop():
    item_table, text = tables()
    loss = SemanticContrast(invented_pairs(), text, DIM, temperature=TAU, n_negatives=3, rounds=1)
    batch_items = [0, 1, 1, 2, 4, 5, 7, 3]
    value = loss(make_batch(batch_items, item_table, seed=5))
    value.backward()
    grads = item_table.grad.clone(), loss.project.weight.grad.clone()
    # the same draw again, by seed: anchors are the unique batch items, as in the module
    drawn = sample(
        invented_pairs(), torch.unique(torch.tensor(batch_items)), 3, torch.Generator().manual_seed(5), 1
    )
    assert drawn.anchors.tolist() == [0, 1, 2, 3, 4, 5]  # 7 has no positive: dropped
    assert not drawn.valid.all()  # one round leaves masked slots, so the mask is exercised
    item_table.grad = None
    loss.project.weight.grad = None
    weight = loss.project.weight

    def represent(i):
        h = item_table[i] + weight @ text[i]
        return h / h.norm()

    expected = reference_loss(drawn, represent)
    expected.backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(grads[0], item_table.grad)
    torch.testing.assert_close(grads[1], weight.grad)


def test_gradients_reach_item_embeddings_and_projection_but_not_the_text():
    item_table, text = tables()
    loss = SemanticContrast(invented_pairs(), text, DIM, temperature=TAU, n_negatives=2)
    loss(make_batch([0, 4], item_table, seed=0)).backward()
    assert [name for name, _ in loss.named_parameters()] == ["project.weight"]
    assert loss.project.weight.grad.abs().sum() > 0
    assert not loss.text.requires_grad and loss.text.grad is None
    assert "text" not in loss.state_dict()  # frozen input, rebuilt from the text file, never checkpointed
    assert item_table.grad[[0, 4]].abs().sum(dim=1).min() > 0


def test_ids_mode_ignores_the_text():
    item_table, text = tables()
    with_text = SemanticContrast(invented_pairs(), text, DIM, temperature=TAU, n_negatives=3, inputs="ids")
    without = SemanticContrast(invented_pairs(), None, DIM, temperature=TAU, n_negatives=3, inputs="ids")
    assert list(without.parameters()) == [] and without.project is None
    batch_items = [0, 2, 5, 6]
    value = with_text(make_batch(batch_items, item_table, seed=3))
    assert value.item() == without(make_batch(batch_items, item_table, seed=3)).item()
    drawn = sample(invented_pairs(), torch.tensor(batch_items), 3, torch.Generator().manual_seed(3))
    expected = reference_loss(drawn, lambda i: item_table[i] / item_table[i].norm())
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_text_mode_trains_only_the_projection():
    item_table, text = tables()
    loss = SemanticContrast(invented_pairs(), text, DIM, temperature=TAU, n_negatives=2, inputs="text")
    loss(make_batch([0, 1, 4], item_table, seed=0)).backward()
    assert item_table.grad is None and loss.project.weight.grad.abs().sum() > 0


def test_a_batch_without_any_positive_pair_gives_zero():
    item_table, text = tables()
    loss = SemanticContrast(invented_pairs(), text, DIM)
    assert loss(make_batch([7, 7], item_table, seed=0)).item() == 0.0


def test_constructor_rejects_bad_settings():
    pairs = invented_pairs()
    _, text = tables()
    with pytest.raises(ValueError, match="inputs"):
        SemanticContrast(pairs, text, DIM, inputs="text+ids")
    with pytest.raises(ValueError, match="one row per item"):
        SemanticContrast(pairs, None, DIM)
    with pytest.raises(ValueError, match="one row per item"):
        SemanticContrast(pairs, text[:5], DIM)
    with pytest.raises(ValueError, match="temperature"):
        SemanticContrast(pairs, text, DIM, **{"temperature": 0.0})


def test_loss_on_the_device_of_the_batch():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    item_table, text = tables()
    item_table = item_table.detach().to(device).requires_grad_()
    loss = SemanticContrast(invented_pairs(), text, DIM, temperature=TAU, n_negatives=3).to(device)
    batch = make_batch([0, 1, 4, 5, 7], item_table, seed=0)
    batch.users, batch.items = batch.users.to(device), batch.items.to(device)
    batch.generator = torch.Generator(device=device).manual_seed(0)
    value = loss(batch)
    value.backward()
    assert value.device == item_table.device and torch.isfinite(value)
    assert item_table.grad.device == item_table.device and loss.project.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("pairs, inputs", [("metadata", "ids+text"), ("metadata", "ids"),
                                           ("text_knn", "ids+text"), ("random", "ids+text")])  # fmt: skip
def test_the_registered_builder_makes_every_ablation(tmp_path, pairs, inputs):
    genres = [["A"], ["A", "B"], ["B"], ["A"], ["C"], ["C", "D"], ["D"], ["E"]]
    items = pd.DataFrame({"item": range(8), "genres": genres, "synopsis": ["a plot"] * 7 + [None]})
    items.to_parquet(tmp_path / "items.parquet")
    item_table, text = tables()
    np.save(tmp_path / "text.npy", text.numpy())
    context = TermContext(DIM, tmp_path / "items.parquet", tmp_path / "text.npy")
    options = {"pairs": pairs, "inputs": inputs, "fields": ["genres"], "min_overlap": 1, "k": 2}
    term = build_term({"name": "semantic_cl", "gamma": 0.1, "phase": "all", "options": options}, context)
    assert term.on_batch and (term.project is None) == (inputs == "ids")
    counts = term.pairs.positive_counts()
    if pairs == "text_knn":
        assert int(counts[7]) == 0 and int(counts[:7].max()) <= 2  # item 7 has no synopsis
    else:
        assert counts.tolist() == invented_pairs().positive_counts().tolist()  # random keeps the counts
    loss = term(make_batch([0, 1, 2, 4, 5], item_table, seed=0))
    loss.backward()
    assert torch.isfinite(loss) and item_table.grad.abs().sum() > 0


def test_builder_options_are_checked():
    with pytest.raises(RecipeError, match="bad options"):
        bad = {"name": "semantic_cl", "gamma": 1.0, "phase": "all", "options": {"colour": 1}}
        build_term(bad, TermContext(DIM))
    with pytest.raises(RecipeError, match="takes no options"):
        build_term({"name": "stable_rank", "gamma": 1.0, "phase": "all", "options": {"k": 1}}, None)
