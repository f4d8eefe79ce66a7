"""KGCN: a hand-computed example, every aggregator against a loop reference, score_block == score_pairs,
gradients, errors, and a planted problem that KGCN + bce must learn."""

import math

import pytest
import torch

from specrec.losses import LOSSES, Batch
from specrec.models import MODELS
from specrec.models.kgcn import AGGREGATORS, KGCN, SPREAD_LIMIT

# ---- the hand-computed example: 2 users, items 0..2, attribute entities 3 and 4, relations 0 and 1 ----
# (relation 2 is the self relation of the isolated item 2), K = 2, d = 2, H = 1, sum aggregator
HAND_ENTITY = torch.tensor([[3, 4], [3, 3], [2, 2], [0, 1], [0, 0]])
HAND_RELATION = torch.tensor([[0, 1], [0, 0], [2, 2], [0, 0], [1, 1]])


def hand_model() -> KGCN:
    model = KGCN(2, 3, dim=2, adj_entity=HAND_ENTITY, adj_relation=HAND_RELATION, n_relations=2, n_hops=1)
    with torch.no_grad():
        model.user.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        model.entity.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [0.0, -1.0]]))
        model.relation.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        model.aggregators[0].linear.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        model.aggregators[0].linear.bias.copy_(torch.tensor([0.0, 0.5]))
    return model


def test_hand_computed_scores():
    model = hand_model()
    # (u0, item 0): pi(u0, r0) = mean(1*2, 0*0) = 1, pi(u0, r1) = 0 -> a0 = e/(e+1), a1 = 1/(e+1);
    # v_N = (a0*[2, 0] + a1*[0, -1]) / 2 = [a0, -a1/2]; W(v + v_N) + b = [1 + a0 - a1/2, 0.5 - a1/2];
    # s = u0 . tanh(.) = tanh(1 + a0 - a1/2)
    a0, a1 = math.e / (math.e + 1), 1 / (math.e + 1)
    expected_00 = math.tanh(1 + a0 - a1 / 2)
    # (u1, item 1): both neighbours are entity 3 via r0 -> a = 1/2 each; v_N = [1, 0]; v + v_N = [1, 1];
    # W(.) + b = [2, 1.5]; s = u1 . tanh(.) = 2 tanh(1.5)
    expected_11 = 2 * math.tanh(1.5)
    # (u0, item 2): isolated, itself twice via the self relation -> v_N = e2 / 2 = [.5, .5];
    # v + v_N = [1.5, 1.5]; W(.) + b = [3, 2]; s = tanh(3)
    expected_02 = math.tanh(3.0)
    scores = model.score_pairs(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 2]))
    assert scores.tolist() == pytest.approx([expected_00, expected_11, expected_02], rel=1e-6)
    block = model.score_block(torch.tensor([0, 1]))
    assert [block[0, 0], block[1, 1], block[0, 2]] == pytest.approx(scores.tolist(), rel=1e-6)


# ---- an unvectorised reference: the receptive-field recursion written out with Python floats ----


def as_lists(model: KGCN) -> dict:
    return {
        "user": model.user.weight.tolist(),
        "entity": model.entity.weight.tolist(),
        "relation": model.relation.weight.tolist(),
        "weights": [a.linear.weight.tolist() for a in model.aggregators],
        "biases": [a.linear.bias.tolist() for a in model.aggregators],
        "adj_entity": model.adj_entity.tolist(),
        "adj_relation": model.adj_relation.tolist(),
        "kind": model.aggregators[0].kind,
        "hops": model.n_hops,
    }


def reference_vector(p: dict, user: list[float], entity: int, iteration: int) -> list[float]:
    """h^0 = e; h^t(v) = act_t(aggregate_t(h^{t-1}(v), mean_k softmax_k(pi(user, r_k)) h^{t-1}(n_k)))."""
    if iteration == 0:
        return p["entity"][entity]
    dim = len(user)
    own = reference_vector(p, user, entity, iteration - 1)
    neighbours = p["adj_entity"][entity]
    logits = [
        sum(u * r for u, r in zip(user, p["relation"][rel], strict=True)) / dim
        for rel in p["adj_relation"][entity]
    ]
    total = sum(math.exp(x) for x in logits)
    mixed = [0.0] * dim
    for logit, neighbour in zip(logits, neighbours, strict=True):
        vector = reference_vector(p, user, neighbour, iteration - 1)
        for j in range(dim):
            mixed[j] += math.exp(logit) / total * vector[j] / len(neighbours)
    if p["kind"] == "sum":
        inputs = [a + b for a, b in zip(own, mixed, strict=True)]
    elif p["kind"] == "concat":
        inputs = own + mixed
    else:
        inputs = mixed
    weight, bias = p["weights"][iteration - 1], p["biases"][iteration - 1]
    out = [
        sum(w * x for w, x in zip(row, inputs, strict=True)) + b for row, b in zip(weight, bias, strict=True)
    ]
    act = math.tanh if iteration == p["hops"] else (lambda x: max(x, 0.0))
    return [act(x) for x in out]


def reference_score(p: dict, user: int, item: int) -> float:
    vector = reference_vector(p, p["user"][user], item, p["hops"])
    return sum(u * v for u, v in zip(p["user"][user], vector, strict=True))


N_USERS, N_ITEMS, N_ENTITIES, N_RELATIONS, K = 4, 5, 9, 3, 3


def random_adjacency(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    adj_entity = torch.randint(N_ENTITIES, (N_ENTITIES, K), generator=generator)
    adj_relation = torch.randint(N_RELATIONS + 1, (N_ENTITIES, K), generator=generator)
    return adj_entity, adj_relation


def random_model(aggregator: str, hops: int, seed: int = 0, **kwargs) -> KGCN:
    torch.manual_seed(seed)
    adj_entity, adj_relation = random_adjacency(seed)
    model = MODELS["kgcn"](
        N_USERS,
        N_ITEMS,
        dim=3,
        init_std=0.7,  # large enough that attention and activations are far from their linear regime
        adj_entity=adj_entity,
        adj_relation=adj_relation,
        n_relations=N_RELATIONS,
        n_hops=hops,
        aggregator=aggregator,
        **kwargs,
    ).double()
    with torch.no_grad():
        for aggregator_module in model.aggregators:
            aggregator_module.linear.bias.normal_(std=0.3)
    return model


def all_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(N_USERS).repeat_interleave(N_ITEMS), torch.arange(N_ITEMS).repeat(N_USERS)


@pytest.mark.parametrize("aggregator", AGGREGATORS)
@pytest.mark.parametrize("hops", [1, 2, 3])
def test_score_pairs_matches_loop_reference(aggregator, hops):
    model = random_model(aggregator, hops)
    users, items = all_pairs()
    scores = model.score_pairs(users, items)
    p = as_lists(model)
    reference = [reference_score(p, u, i) for u, i in zip(users.tolist(), items.tolist(), strict=True)]
    assert scores.tolist() == pytest.approx(reference, rel=1e-9, abs=1e-12)
    assert len({round(s, 6) for s in reference}) > N_USERS  # scores differ across users and items


@pytest.mark.parametrize("aggregator", AGGREGATORS)
@pytest.mark.parametrize("hops", [1, 2, 3])
@pytest.mark.parametrize("eval_floats", [1, 10**3, 2**26])
def test_score_block_equals_score_pairs(aggregator, hops, eval_floats):
    # eval_floats = 1 scores one user per chunk, 2**26 all at once
    model = random_model(aggregator, hops, eval_floats=eval_floats)
    users, items = all_pairs()
    pairs = model.score_pairs(users, items).view(N_USERS, N_ITEMS)
    block = model.score_block(torch.tensor([2, 0, 3, 1, 2]))  # any order, repeats allowed
    torch.testing.assert_close(block, pairs[[2, 0, 3, 1, 2]], rtol=1e-10, atol=1e-12)


def test_score_block_is_exact_for_users_with_extreme_relation_logits():
    model = random_model("sum", 2).float()
    with torch.no_grad():
        model.user.weight[1] = torch.tensor([300.0, -200.0, 100.0])  # pi spreads by far more than the limit
    logits = model.user.weight @ model.relation.weight.T / 3
    spread = logits.max(1).values - logits.min(1).values
    assert spread[1] > SPREAD_LIMIT and (spread[[0, 2, 3]] < SPREAD_LIMIT).all()
    users, items = all_pairs()
    pairs = model.score_pairs(users, items).view(N_USERS, N_ITEMS)
    assert torch.isfinite(pairs).all()
    torch.testing.assert_close(model.score_block(torch.arange(N_USERS)), pairs, rtol=1e-5, atol=1e-5)


def test_score_block_matches_in_float32():
    model = random_model("concat", 2).float()
    users, items = all_pairs()
    pairs = model.score_pairs(users, items).view(N_USERS, N_ITEMS)
    torch.testing.assert_close(model.score_block(torch.arange(N_USERS)), pairs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_gradients_reach_every_parameter_kind(aggregator):
    model = random_model(aggregator, 2)
    users, items = all_pairs()
    model.score_pairs(users, items).square().sum().backward()
    for name in ("user.weight", "entity.weight", "relation.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    for aggregator_module in model.aggregators:
        assert aggregator_module.linear.weight.grad.abs().sum() > 0
    # every user row was scored, so every user row has a gradient
    assert (model.user.weight.grad.abs().sum(1) > 0).all()


def test_tables_registry_and_buffers():
    model = random_model("sum", 2)
    assert MODELS["kgcn"] is KGCN and model.trainable
    users, items = model()
    assert users.shape == (N_USERS, 3) and torch.equal(items, model.entity.weight[:N_ITEMS])
    assert model.relation.weight.shape == (N_RELATIONS + 1, 3)
    state = model.state_dict()
    assert "adj_entity" not in state and "adj_relation" not in state
    assert {name for name, _ in model.named_buffers()} == {"adj_entity", "adj_relation"}
    # extra kwargs of the training loop (train_users / train_items) are accepted and ignored
    adj_entity, adj_relation = random_adjacency()
    KGCN(N_USERS, N_ITEMS, adj_entity=adj_entity, adj_relation=adj_relation, train_users=torch.arange(3))


def test_n_relations_defaults_to_the_largest_relation_id():
    adj_entity, adj_relation = random_adjacency()
    model = KGCN(N_USERS, N_ITEMS, adj_entity=adj_entity, adj_relation=adj_relation)
    assert model.relation.num_embeddings == int(adj_relation.max()) + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"adj_entity": None}, "needs the sampled KG neighbourhoods"),
        ({"adj_relation": None}, "needs the sampled KG neighbourhoods"),
        ({"adj_relation": torch.zeros(N_ENTITIES, K + 1, dtype=torch.long)}, "must both be"),
        ({"adj_entity": torch.full((N_ENTITIES, K), N_ENTITIES)}, "adj_entity ids"),
        ({"n_relations": 1}, "adj_relation ids"),
        ({"aggregator": "mean"}, "aggregator must be one of"),
        ({"n_hops": 0}, "n_hops must be"),
    ],
)
def test_clear_errors(kwargs, message):
    adj_entity, adj_relation = random_adjacency()
    options = {"adj_entity": adj_entity, "adj_relation": adj_relation, "n_relations": N_RELATIONS} | kwargs
    with pytest.raises(ValueError, match=message):
        KGCN(N_USERS, N_ITEMS, **options)


def test_items_must_be_entities():
    adj_entity, adj_relation = random_adjacency()
    with pytest.raises(ValueError, match="items 0..9 must all be entities"):
        KGCN(N_USERS, 10, adj_entity=adj_entity, adj_relation=adj_relation)


# ---- a planted problem: users of group g like the items of genre g; a quarter of the items are cold ----


def test_kgcn_with_bce_learns_a_planted_problem():
    torch.manual_seed(0)
    n_users, n_items, genres = 40, 40, torch.arange(40) % 2  # items 40 and 41 are the two genre entities
    # item -> its genre entity (its only neighbour, so drawn twice); genre g -> items g and g + 2
    adj_entity = torch.cat([(n_items + genres)[:, None].expand(-1, 2), torch.tensor([[0, 2], [1, 3]])])
    adj_relation = torch.zeros_like(adj_entity)
    model = KGCN(
        n_users, n_items, dim=8, adj_entity=adj_entity, adj_relation=adj_relation, n_relations=1, n_hops=1
    )
    group = torch.arange(n_users) % 2
    likes = group[:, None] == genres[None, :]
    cold = torch.arange(n_items) >= 30  # items 30..39: no training interaction, reachable only through the KG
    users, items = torch.nonzero(likes & ~cold, as_tuple=True)
    optimizer, loss = torch.optim.Adam(model.parameters(), lr=2e-2), LOSSES["bce"]()
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        negatives = torch.randint(30, (users.numel(), 1), generator=generator)
        user_table, item_table = model()
        batch = Batch(
            users,
            items,
            user_table[users],
            item_table[items],
            negatives,
            item_table[negatives],
            user_table,
            item_table,
            score_pairs=model.score_pairs,
            generator=generator,
        )
        optimizer.zero_grad()
        loss(batch)["bce"].backward()
        optimizer.step()
    scores = model.score_block(torch.arange(n_users))[:, cold]
    positive, negative = scores[likes[:, cold]], scores[~likes[:, cold]]
    auc = (positive[:, None] > negative[None, :]).double().mean()
    assert auc > 0.9  # random scores give 0.5
