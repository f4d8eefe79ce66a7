"""Fixtures shared by several test modules."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smoke import MIRROR, run_smoke
from specrec import io
from specrec.data.download import materialize
from specrec.data.prepare import prepare
from specrec.data.split import write_split
from specrec.kg import build_item_kg


@pytest.fixture(scope="session")
def ml1m_items(tmp_path_factory) -> pd.DataFrame:
    """ML-1M's items table as prepare writes it, from the offline mirror (skips when it is absent)."""
    if not (MIRROR / "ml-1m").is_dir():
        pytest.skip(f"offline mirror {MIRROR} not present")
    root = tmp_path_factory.mktemp("ml-1m")
    materialize("ml-1m", root / "raw", str(MIRROR))
    prepare("ml-1m", root / "raw", root / "out")
    return pd.read_parquet(root / "out" / "items.parquet")


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory) -> Path:
    """The smoke DAG run locally once per session (skips without the offline mirror)."""
    if not (MIRROR / "ml-100k").is_dir():
        pytest.skip(f"no dataset mirror at {MIRROR}")
    workdir = tmp_path_factory.mktemp("smoke")
    run_smoke(workdir)
    return workdir


# a small planted problem for the training loop (test_train.py, test_groups.py)
@pytest.fixture(scope="session")
def split_dir(tmp_path_factory) -> Path:
    """60 users in 3 taste clusters over 45 items: each user likes ~12 items of its own cluster."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(60), 12)
    items = (users % 3) * 15 + np.concatenate([rng.choice(15, 12, replace=False) for _ in range(60)])
    io.write_parquet(
        root / "interactions.parquet",
        pd.DataFrame({"user": users, "item": items, "rating": 1.0}).astype(
            {"user": "int32", "item": "int32"}
        ),
    )
    io.write_parquet(
        root / "users.parquet", pd.DataFrame({"user": np.arange(60, dtype="int32"), "raw_user": 1})
    )
    io.write_parquet(
        root / "items.parquet", pd.DataFrame({"item": np.arange(45, dtype="int32"), "raw_item": 1})
    )
    out = root / "split"
    write_split(root / "interactions.parquet", root / "users.parquet", root / "items.parquet", out, seed=3)
    return out


@pytest.fixture(scope="session")
def item_data(tmp_path_factory) -> dict:
    """Item metadata (one genre per taste cluster), its knowledge graph and random 'synopsis' vectors."""
    root = tmp_path_factory.mktemp("items")
    items = pd.DataFrame({"item": np.arange(45), "raw_item": np.arange(45)})
    items["genres"] = [[f"g{i // 15}"] for i in range(45)]
    for column in ("directors", "writers", "actors"):
        items[column] = [[] for _ in range(45)]
    items["year"], items["rated"], items["synopsis"] = 1990, None, "a film"
    io.write_parquet(root / "items.parquet", items)
    build_item_kg(items, ["genre"]).write(root / "kg")
    text = np.random.default_rng(0).normal(size=(45, 16)).astype("float32")
    np.save(root / "text.npy", text)
    return {"item_meta": root / "items.parquet", "text_embeddings": root / "text.npy", "kg_dir": root / "kg"}
