"""Split invariants, the files write_split leaves, and load_split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specrec import io
from specrec.data.split import PARTS, SPLITS, Split, load_split, random_edge_split, write_split

N_USERS, N_ITEMS = 40, 60


def interactions(n: int = 1003, seed: int = 7) -> pd.DataFrame:
    """n distinct (user, item) edges; user 39 and item 59 get none, to test the id-space density."""
    rng = np.random.default_rng(seed)
    cells = rng.choice((N_USERS - 1) * (N_ITEMS - 1), size=n, replace=False)
    return pd.DataFrame(
        {
            "user": (cells // (N_ITEMS - 1)).astype(np.int32),
            "item": (cells % (N_ITEMS - 1)).astype(np.int32),
            "rating": np.ones(n, dtype=np.float32),
        }
    )


def edges(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame["user"].tolist(), frame["item"].tolist(), strict=True))


def test_parts_are_disjoint_and_complete():
    data = interactions()
    parts = random_edge_split(data, (0.8, 0.1, 0.1), seed=1)
    sets = {name: edges(frame) for name, frame in parts.items()}
    assert sum(len(frame) for frame in parts.values()) == len(data)
    assert not sets["train"] & sets["valid"] and not sets["train"] & sets["test"]
    assert not sets["valid"] & sets["test"]
    assert sets["train"] | sets["valid"] | sets["test"] == edges(data)


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (0.5, 0.25, 0.25), (1.0, 0.0, 0.0)])
@pytest.mark.parametrize("n", [1003, 10, 1])
def test_sizes_follow_fractions(fractions, n):
    parts = random_edge_split(interactions(n), fractions, seed=3)
    for name, fraction in zip(("train", "valid", "test"), fractions, strict=True):
        assert abs(len(parts[name]) - fraction * n) <= 1


def test_columns_and_dtypes():
    parts = random_edge_split(interactions(), seed=0)
    assert set(parts) == {"train", "valid", "test"}
    for frame in parts.values():
        assert list(frame.columns) == ["user", "item"]
        assert frame["user"].dtype == np.int32 and frame["item"].dtype == np.int32


def test_same_seed_same_split_other_seed_other_split():
    data = interactions()
    a, b = random_edge_split(data, seed=11), random_edge_split(data, seed=11)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    c = random_edge_split(data, seed=12)
    assert edges(a["test"]) != edges(c["test"])


def test_split_uses_positions_not_index_labels():
    """A frame with other index labels (e.g. after filtering) splits the same as a fresh one."""
    data = interactions()
    shuffled_index = data.set_axis(np.arange(len(data))[::-1])
    a, b = random_edge_split(data, seed=5), random_edge_split(shuffled_index, seed=5)
    assert edges(a["valid"]) == edges(b["valid"])


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1)])
def test_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        random_edge_split(interactions(), fractions)


def test_registry_has_random_edge():
    assert SPLITS["random_edge"] is random_edge_split


def write_inputs(tmp_path):
    data = interactions()
    io.write_parquet(tmp_path / "interactions.parquet", data)
    io.write_parquet(tmp_path / "users.parquet", pd.DataFrame({"user": np.arange(N_USERS, dtype=np.int32)}))
    io.write_parquet(tmp_path / "items.parquet", pd.DataFrame({"item": np.arange(N_ITEMS, dtype=np.int32)}))
    return data, [tmp_path / f"{name}.parquet" for name in ("interactions", "users", "items")]


def test_write_split_files(tmp_path):
    data, paths = write_inputs(tmp_path)
    out = tmp_path / "split"
    meta = write_split(*paths, out, protocol="random_edge", fractions=(0.8, 0.1, 0.1), seed=9)
    assert sorted(p.name for p in out.iterdir()) == [
        "split.json",
        "stats.csv",
        "test.parquet",
        "train.parquet",
        "valid.parquet",
    ]
    assert meta == io.read_json(out / "split.json")
    assert meta == {
        "n_users": N_USERS,
        "n_items": N_ITEMS,
        "seed": 9,
        "protocol": "random_edge",
        "fractions": [0.8, 0.1, 0.1],
        "valid_fraction": None,
        "counts": {"train": 802, "valid": 101, "test": 100},
    }


def test_stats_csv(tmp_path):
    data, paths = write_inputs(tmp_path)
    out = tmp_path / "split"
    write_split(*paths, out, seed=9)
    stats = pd.read_csv(out / "stats.csv")
    assert list(stats.columns) == ["split", "users", "items", "interactions", "density"]
    assert stats["split"].tolist() == ["all", "train", "valid", "test"]
    stats = stats.set_index("split")
    assert stats.loc["all", "interactions"] == len(data)
    assert stats.loc["all", "users"] == data["user"].nunique() == N_USERS - 1  # only users present
    assert stats.loc["all", "items"] == data["item"].nunique()
    assert stats.loc[["train", "valid", "test"], "interactions"].sum() == len(data)
    expected = stats["interactions"] / (N_USERS * N_ITEMS)  # the whole id space, empty rows included
    np.testing.assert_allclose(stats["density"], expected)
    test_part = pd.read_parquet(out / "test.parquet")
    assert stats.loc["test", "users"] == test_part["user"].nunique()


def test_load_split_round_trip(tmp_path):
    _, paths = write_inputs(tmp_path)
    out = tmp_path / "split"
    write_split(*paths, out, seed=4)
    split = load_split(out)
    assert isinstance(split, Split)
    assert (split.n_users, split.n_items) == (N_USERS, N_ITEMS)
    expected = random_edge_split(pd.read_parquet(paths[0]), seed=4)
    for name in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(getattr(split, name), expected[name])


def test_write_split_rejects_unknown_protocol(tmp_path):
    _, paths = write_inputs(tmp_path)
    with pytest.raises(KeyError, match="random_edge"):
        write_split(*paths, tmp_path / "split", protocol="temporal")


def test_write_split_rejects_ids_outside_the_maps(tmp_path):
    _, paths = write_inputs(tmp_path)
    io.write_parquet(paths[1], pd.DataFrame({"user": np.arange(5, dtype=np.int32)}))
    with pytest.raises(ValueError, match="outside"):
        write_split(*paths, tmp_path / "split")


def provided_interactions() -> pd.DataFrame:
    """20 users with 1..20 training items each and 2 test items; the pair (0, 0) is in both parts."""
    users = np.repeat(np.arange(20), np.arange(1, 21))
    items = np.concatenate([np.arange(n) for n in range(1, 21)])
    train = pd.DataFrame({"user": users, "item": items, "part": "train"})
    test = pd.DataFrame({"user": np.repeat(np.arange(20), 2), "item": np.tile([0, 99], 20), "part": "test"})
    return pd.concat([train, test], ignore_index=True)


def test_provided_split_keeps_test_and_holds_out_a_tenth_of_each_users_training_items():
    frame = provided_interactions()
    parts = SPLITS["provided"](frame, seed=5, valid_fraction=0.1)
    assert len(parts["test"]) == 40
    train_counts = parts["train"].groupby("user").size()
    valid_counts = parts["valid"].groupby("user").size().reindex(range(20), fill_value=0)
    n = np.arange(1, 21)
    held_out = n - np.floor(n * 0.9 + 0.5).astype(int)  # the train boundary rounds to the nearest row
    assert valid_counts.tolist() == held_out.tolist()
    assert (train_counts + valid_counts).tolist() == list(range(1, 21))
    train_pairs = set(map(tuple, frame[frame.part == "train"][["user", "item"]].to_numpy()))
    got = set(map(tuple, parts["train"].to_numpy())) | set(map(tuple, parts["valid"].to_numpy()))
    assert got == train_pairs
    again = SPLITS["provided"](frame, seed=5, valid_fraction=0.1)
    assert all(parts[name].equals(again[name]) for name in PARTS)


def test_provided_split_needs_a_part_column():
    with pytest.raises(ValueError, match="ships its own train/test split"):
        SPLITS["provided"](pd.DataFrame({"user": [0], "item": [0]}), seed=1)


def test_user_ratio_split_cuts_every_user():
    users = np.repeat(np.arange(30), 10)
    frame = pd.DataFrame({"user": users, "item": np.tile(np.arange(10), 30)})
    parts = SPLITS["user_ratio"](frame, fractions=(0.6, 0.2, 0.2), seed=2)
    for name, size in (("train", 6), ("valid", 2), ("test", 2)):
        assert (parts[name].groupby("user").size() == size).all()
    assert sum(len(p) for p in parts.values()) == 300
    joined = pd.concat(parts.values())
    assert not joined.duplicated().any()
