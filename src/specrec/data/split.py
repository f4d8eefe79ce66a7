"""Split the prepared interactions into train/valid/test, and load a split back.

A protocol is a function (interactions, fractions, seed, valid_fraction) -> {"train", "valid", "test"}
registered in SPLITS; write_split stores the parts together with split.json (the id space and how it was
made) and stats.csv (sizes and densities), so later stages never need the raw tables again.

- random_edge: a seeded random split of all edges (the stable-rank protocol; 6:2:2 for paper 1's KGCN).
- user_ratio: each user's items are split by the fractions (every user is in every part if it can be).
- provided: the dataset's own train/test files (LightGCN's, DirectSpec's); since they have no validation
  set, valid_fraction of each user's training items is held out (seeded) for early stopping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from specrec import io

PARTS = ("train", "valid", "test")
Protocol = Callable[..., dict[str, pd.DataFrame]]


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    return float(fractions[0]), float(fractions[1]), float(fractions[2])


def _pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """user,item as int32, sorted: a part's row order carries no information, so make it canonical."""
    out = pd.DataFrame({"user": frame["user"].to_numpy(np.int32), "item": frame["item"].to_numpy(np.int32)})
    return out.sort_values(["user", "item"], kind="stable").reset_index(drop=True)


def random_edge_split(
    interactions: pd.DataFrame, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, **_: object
) -> dict[str, pd.DataFrame]:
    """Shuffle the edges with a seeded permutation and cut it at the fractions' (rounded) boundaries.

    Each part is within one row of its fraction; the parts are disjoint and together hold every edge.
    """
    _check_fractions(fractions)
    n = len(interactions)
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.rint(np.cumsum(fractions)[:2] * n).astype(np.int64)
    pieces = np.split(order, cuts)
    return {name: _pairs(interactions.iloc[piece]) for name, piece in zip(PARTS, pieces, strict=True)}


def per_user_cut(users: np.ndarray, fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Part index (0, 1, 2, ...) of each row: every user's rows in random order, cut at the fractions.

    Vectorised: a random key orders the rows within each user, the rank divided by the user's count
    says which part a row falls in. Boundaries round to the nearest row, so a user with 10 items and
    fractions (0.8, 0.1, 0.1) gives 8/1/1, and a user with one item keeps it in the first part.
    """
    order = np.lexsort((rng.random(len(users)), users))
    counts = np.bincount(users, minlength=int(users.max()) + 1 if len(users) else 0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_users = users[order]
    rank = np.arange(len(users)) - starts[sorted_users]
    bounds = np.floor(np.outer(counts[sorted_users], np.cumsum(fractions)[:-1]) + 0.5)
    part = np.empty(len(users), dtype=np.int64)
    part[order] = (rank[:, None] >= bounds).sum(axis=1)
    return part


def user_ratio_split(
    interactions: pd.DataFrame, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, **_: object
) -> dict[str, pd.DataFrame]:
    """Split every user's items by the fractions (seeded), so each part holds every user it can."""
    _check_fractions(fractions)
    part = per_user_cut(interactions["user"].to_numpy(), fractions, np.random.default_rng(seed))
    return {name: _pairs(interactions[part == k]) for k, name in enumerate(PARTS)}


def provided_split(
    interactions: pd.DataFrame, seed: int = 0, valid_fraction: float = 0.1, **_: object
) -> dict[str, pd.DataFrame]:
    """The dataset's own train/test parts; valid_fraction of each user's training items become validation."""
    if "part" not in interactions.columns:
        raise ValueError("the 'provided' split needs a dataset that ships its own train/test split")
    train = interactions[interactions["part"] == "train"]
    cut = per_user_cut(
        train["user"].to_numpy(), (1 - valid_fraction, valid_fraction), np.random.default_rng(seed)
    )
    return {
        "train": _pairs(train[cut == 0]),
        "valid": _pairs(train[cut == 1]),
        "test": _pairs(interactions[interactions["part"] == "test"]),
    }


SPLITS: dict[str, Protocol] = {
    "random_edge": random_edge_split,
    "user_ratio": user_ratio_split,
    "provided": provided_split,
}


@dataclass
class Split:
    """A loaded split; n_users/n_items are the whole id space, not just the ids present in a part."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    n_users: int
    n_items: int
    protocol: dict | None = None  # protocol, fractions, valid_fraction, seed: how the split was made


def part_stats(frames: dict[str, pd.DataFrame], n_users: int, n_items: int) -> pd.DataFrame:
    """One row per named set of interactions: distinct users and items present, interactions, density.

    Density divides by the whole id space so the rows are comparable with one another.
    """
    rows = [
        {
            "split": name,
            "users": int(frame["user"].nunique()),
            "items": int(frame["item"].nunique()),
            "interactions": len(frame),
            "density": len(frame) / (n_users * n_items),
        }
        for name, frame in frames.items()
    ]
    return pd.DataFrame(rows, columns=["split", "users", "items", "interactions", "density"])


def split_stats(parts: dict[str, pd.DataFrame], n_users: int, n_items: int) -> pd.DataFrame:
    """Rows all/train/valid/test of a split."""
    frames = {"all": pd.concat([parts[name] for name in PARTS], ignore_index=True), **parts}
    return part_stats(frames, n_users, n_items)


def write_split(
    interactions_path: str | os.PathLike,
    users_path: str | os.PathLike,
    items_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    protocol: str = "random_edge",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    valid_fraction: float = 0.1,
) -> dict:
    """Split with `protocol`; write the parts, stats.csv and (last) split.json; return split.json."""
    if protocol not in SPLITS:
        raise KeyError(f"unknown split protocol {protocol!r}; valid names: {', '.join(sorted(SPLITS))}")
    fractions = _check_fractions(fractions)
    interactions = pd.read_parquet(interactions_path)
    n_users = len(pd.read_parquet(users_path, columns=["user"]))
    n_items = len(pd.read_parquet(items_path, columns=["item"]))
    if len(interactions) and (interactions["user"].max() >= n_users or interactions["item"].max() >= n_items):
        raise ValueError(f"{interactions_path} has ids outside the {n_users} users x {n_items} items id maps")
    parts = SPLITS[protocol](interactions, fractions=fractions, seed=seed, valid_fraction=valid_fraction)
    empty = [name for name in PARTS if parts[name].empty]
    if empty:
        raise ValueError(f"the {protocol} split of {interactions_path} left {', '.join(empty)} empty")
    out_dir = Path(out_dir)
    for name in PARTS:
        io.write_parquet(out_dir / f"{name}.parquet", parts[name])
    io.write_csv(out_dir / "stats.csv", split_stats(parts, n_users, n_items))
    meta = {
        "n_users": n_users,
        "n_items": n_items,
        "seed": seed,
        "protocol": protocol,
        "fractions": list(fractions) if protocol != "provided" else None,
        "valid_fraction": valid_fraction if protocol == "provided" else None,
        "counts": {name: len(parts[name]) for name in PARTS},
    }
    io.write_json(out_dir / "split.json", meta)
    return meta


def load_split(split_dir: str | os.PathLike) -> Split:
    split_dir = Path(split_dir)
    meta = io.read_json(split_dir / "split.json")
    parts = {name: pd.read_parquet(split_dir / f"{name}.parquet") for name in PARTS}
    protocol = {key: meta.get(key) for key in ("protocol", "fractions", "valid_fraction", "seed")}
    return Split(**parts, n_users=int(meta["n_users"]), n_items=int(meta["n_items"]), protocol=protocol)
