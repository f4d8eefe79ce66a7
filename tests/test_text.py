"""Tests for item text building and offline sentence encoding with the bundled MiniLM model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: never touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest

from specrec import io
from specrec.runtime import pick_device
from specrec.text import (
    TextModelUnavailableError,
    encode_items,
    item_texts,
    load_model,
    resolve_model,
    text_model_slug,
)


def make_items() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "item": np.arange(5, dtype=np.int32),
            "raw_item": ["1", "2", "3", "4", "5"],
            "title": ["Toy Story", "Space Dogs", "Galaxy Hounds", "Heist", "Untitled"],
            "year": pd.array([1995, 2001, None, 1999, None], dtype="Int16"),
            "genres": [
                ["Animation", "Children's", "Comedy"],
                ["Sci-Fi"],
                ["Sci-Fi", "Adventure"],
                ["Crime"],
                [],
            ],
            "directors": [[], [], [], [], []],
            "writers": [[], [], [], [], []],
            "actors": [[], [], [], [], []],
            "synopsis": [
                None,
                "A team of astronaut dogs pilots a spaceship to explore a distant galaxy.",
                "Brave dogs fly a rocket through outer space to discover new planets among the stars.",
                "A gang of thieves plans to rob a heavily guarded bank vault in the city.",
                "   ",
            ],
        }
    )
    return frame


def test_item_texts_fallbacks():
    texts, fallbacks = item_texts(make_items())
    assert fallbacks == 2
    assert texts[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert texts[1].startswith("A team of astronaut dogs")
    assert texts[4] == "Untitled."  # blank synopsis, no year, no genres


def test_item_texts_rejects_misaligned_ids():
    items = make_items().iloc[::-1]
    with pytest.raises(ValueError, match="item id"):
        item_texts(items)


def test_slug_and_resolve(tmp_path):
    assert text_model_slug("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert text_model_slug("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert text_model_slug("BAAI/bge-small-en-v1.5") == "bge-small-en-v1.5"
    local = tmp_path / "my model"
    local.mkdir()
    assert text_model_slug(str(local) + "/") == "my-model"
    assert resolve_model(str(local)) == str(local)
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == resolve_model("all-MiniLM-L6-v2")
    assert os.path.isdir(resolve_model("all-MiniLM-L6-v2"))
    assert resolve_model("org/not-local") == "org/not-local"


def test_pick_device():
    assert pick_device("cpu") == "cpu"
    assert pick_device("cuda:1") == "cuda:1"
    assert pick_device("auto") in {"cpu", "cuda", "mps"}


def test_encode_items_bundled_model(tmp_path):
    items_path = tmp_path / "items.parquet"
    io.write_parquet(items_path, make_items())
    out_npy, out_json = tmp_path / "emb.npy", tmp_path / "emb.json"
    manifest = encode_items(items_path, out_npy, out_json, batch_size=2, device="cpu")

    matrix = np.load(out_npy)
    assert matrix.shape == (5, 384)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)

    saved = io.read_json(out_json)
    assert saved == manifest
    assert saved["model"] == "all-MiniLM-L6-v2"
    assert saved["model_path"] == resolve_model("all-MiniLM-L6-v2")
    assert (saved["dimension"], saved["items"], saved["fallbacks"], saved["device"]) == (384, 5, 2, "cpu")
    assert saved["seconds"] >= 0

    sims = matrix @ matrix.T
    assert sims[1, 2] > sims[1, 3] + 0.1  # two space-dog synopses beat space dogs vs bank heist
    assert sims[1, 2] > sims[2, 3] + 0.1


def test_encode_order_is_restored(tmp_path):
    """Length sorting must not shuffle rows: batch size 1 and 5 give the same matrix."""
    items_path = tmp_path / "items.parquet"
    io.write_parquet(items_path, make_items())
    encode_items(items_path, tmp_path / "a.npy", tmp_path / "a.json", batch_size=1, device="cpu")
    encode_items(items_path, tmp_path / "b.npy", tmp_path / "b.json", batch_size=5, device="cpu")
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"), atol=1e-5)


def test_missing_model_offline_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TextModelUnavailableError, match=r"no-such-model.*offline"):
        load_model("nobody/no-such-model-xyz", device="cpu")
