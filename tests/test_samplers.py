import torch

from specrec.interactions import UserItems
from specrec.samplers import SAMPLERS


def test_uniform_negatives_avoid_training_items():
    # every user has trained on 8 of 10 items: rejection must find the other two
    users = torch.arange(20).repeat_interleave(8)
    items = torch.cat([torch.randperm(10, generator=torch.Generator().manual_seed(u))[:8] for u in range(20)])
    train = UserItems.from_pairs(users.numpy(), items.numpy(), n_users=20, n_items=10)
    batch = torch.arange(20).repeat(5)
    negatives = SAMPLERS["uniform"](batch, batch, 4, train, torch.Generator().manual_seed(0), rounds=60)
    assert negatives.shape == (100, 4)
    assert not train.contains(batch.unsqueeze(1).expand_as(negatives), negatives).any()


def test_shared_negatives_are_one_set_for_the_batch():
    train = UserItems.from_pairs([0, 1], [0, 1], n_users=2, n_items=50)
    negatives = SAMPLERS["shared"](
        torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), 7, train, torch.Generator().manual_seed(0)
    )
    assert negatives.shape == (7,) and int(negatives.max()) < 50


def test_in_batch_negatives_come_from_the_batch_positives():
    train = UserItems.from_pairs([0, 1], [0, 1], n_users=2, n_items=50)
    items = torch.tensor([3, 7, 7, 9])
    negatives = SAMPLERS["in_batch"](
        torch.tensor([0, 1, 0, 1]), items, 5, train, torch.Generator().manual_seed(0)
    )
    assert negatives.shape == (4, 5) and set(negatives.flatten().tolist()) <= {3, 7, 9}


def test_batch_item_negatives_are_uniform_over_the_distinct_batch_items():
    train = UserItems.from_pairs([0, 1], [0, 1], n_users=2, n_items=50)
    items = torch.tensor([3] * 97 + [7, 9, 11])  # item 3 is 97 % of the positives
    negatives = SAMPLERS["batch_items"](
        torch.zeros(100, dtype=torch.long), items, 400, train, torch.Generator().manual_seed(0)
    )
    assert negatives.shape == (100, 400)
    counts = torch.bincount(negatives.flatten(), minlength=50)
    assert set(torch.nonzero(counts).flatten().tolist()) == {3, 7, 9, 11}
    shares = counts[[3, 7, 9, 11]] / negatives.numel()
    assert torch.allclose(shares, torch.full((4,), 0.25), atol=0.01)  # not 0.97 for item 3
    popularity = SAMPLERS["in_batch"](
        torch.zeros(100, dtype=torch.long), items, 400, train, torch.Generator()
    )
    assert (popularity == 3).float().mean() > 0.9


def test_uniform_negatives_on_the_device_of_the_users():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    users = torch.arange(20).repeat_interleave(8)
    items = torch.cat([torch.randperm(10, generator=torch.Generator().manual_seed(u))[:8] for u in range(20)])
    train = UserItems.from_pairs(users.numpy(), items.numpy(), n_users=20, n_items=10).to(device)
    batch = torch.arange(20, device=device).repeat(5)
    negatives = SAMPLERS["uniform"](
        batch, batch, 4, train, torch.Generator(device=device).manual_seed(0), rounds=60
    )
    assert negatives.device == batch.device
    assert not train.contains(batch.unsqueeze(1).expand_as(negatives), negatives).any()
