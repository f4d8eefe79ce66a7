"""Parsers and prepare() on tiny hand-made fixtures in the real formats, and on the real mirror if present."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from smoke import MIRROR
from specrec.data.download import materialize
from specrec.data.prepare import prepare
from specrec.data.sources import DATASETS, ITEM_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures"

ML100K_FILES = ["ml-100k/u.data", "ml-100k/u.item", "ml-100k/u.genre"]
ML1M_FILES = ["ml-1m/movies.dat", "ml-1m-melu-extrainfos/movies_extrainfos.dat"]


def raw_dir_with(tmp_path: Path, files: list[str]) -> Path:
    """A raw_dir as materialize leaves it: fixture files under their canonical flat names."""
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy(FIXTURES / name, raw / Path(name).name)
    return raw


def ml1m_raw(tmp_path: Path, ratings: str = "ratings.dat") -> Path:
    raw = raw_dir_with(tmp_path, [*ML1M_FILES, f"ml-1m/{ratings}"])
    # MeLU's file has CRLF line ends; force them here too in case a checkout normalised the fixture
    path = raw / "movies_extrainfos.dat"
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return raw


def read_items(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "items.parquet")


def lists(values) -> list[str]:
    return [str(v) for v in values]


# ---------------------------------------------------------------------------------------------- ML-100K


def test_ml100k_tables(tmp_path):
    out = tmp_path / "out"
    summary = prepare("ml-100k", raw_dir_with(tmp_path, ML100K_FILES), out)
    assert summary == {
        "dataset": "ml-100k",
        "n_users": 5,
        "n_items": 5,
        "n_interactions": 13,
        "duplicates": 1,
        "bad_rows_skipped": 0,
        "dropped_below_threshold": 0,
        "rating_threshold": None,
        "has_timestamp": True,
        "dropped_by_kcore": 0,
        "kcore": 0,
        "provided_split": False,
    }
    inter = pd.read_parquet(out / "interactions.parquet")
    assert dict(inter.dtypes.astype(str)) == {
        "user": "int32",
        "item": "int32",
        "rating": "float32",
        "timestamp": "int64",
    }
    users = pd.read_parquet(out / "users.parquet")
    assert users["raw_user"].tolist() == [5, 7, 10, 20, 30]  # ids in sorted order of raw ids
    assert users["user"].tolist() == [0, 1, 2, 3, 4]
    # the repeated (10, 2) pair keeps its last rating, 4, and that line's timestamp
    row = inter[(inter["user"] == 2) & (inter["item"] == 1)]
    assert row["rating"].tolist() == [4.0] and row["timestamp"].tolist() == [881251000]


def test_ml100k_items(tmp_path):
    out = tmp_path / "out"
    prepare("ml-100k", raw_dir_with(tmp_path, ML100K_FILES), out)
    items = read_items(out)
    assert items["item"].tolist() == [0, 1, 2, 3, 4]
    assert items["raw_item"].tolist() == [1, 2, 3, 4, 5]  # item 6 has no rating, so no id
    assert items["title"].tolist() == [
        "Paper Lanterns",
        "Café Orbit",  # latin-1 decoded
        "unknown",
        "Rivers of Tin (Ríos de Estaño) (V)",
        "Quiet Harbour",
    ]
    assert items["year"].dtype == "Int16"
    assert items["year"].tolist()[:2] == [1995, 1994] and pd.isna(items["year"].iloc[2])
    assert lists(items["genres"].iloc[0]) == ["Animation", "Children's", "Comedy"]
    assert lists(items["genres"].iloc[4]) == ["Drama", "Thriller"]
    assert all(len(v) == 0 for col in ("directors", "writers", "actors") for v in items[col])
    assert items["synopsis"].isna().all()
    schema = pq.read_schema(out / "items.parquet")
    assert str(schema.field("directors").type) == "list<element: string>"  # not list<null>


# ------------------------------------------------------------------------------------------------ ML-1M


def test_ml1m_with_timestamps(tmp_path):
    out = tmp_path / "out"
    summary = prepare("ml-1m", ml1m_raw(tmp_path), out)
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (4, 5, 11)
    assert summary["duplicates"] == 1 and summary["has_timestamp"]
    inter = pd.read_parquet(out / "interactions.parquet")
    assert "timestamp" in inter.columns
    assert inter.loc[(inter["user"] == 0) & (inter["item"] == 1), "rating"].tolist() == [4.0]


def test_ml1m_without_timestamps(tmp_path):
    out = tmp_path / "out"
    summary = prepare("ml-1m", ml1m_raw(tmp_path, "ratings_no_timestamp.dat"), out)
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (4, 5, 11)
    assert summary["duplicates"] == 0 and not summary["has_timestamp"]
    inter = pd.read_parquet(out / "interactions.parquet")
    assert list(inter.columns) == ["user", "item", "rating"]


def test_ml1m_both_ratings_files_give_the_same_pairs(tmp_path):
    with_ts = prepare("ml-1m", ml1m_raw(tmp_path / "a"), tmp_path / "a" / "out")
    without = prepare("ml-1m", ml1m_raw(tmp_path / "b", "ratings_no_timestamp.dat"), tmp_path / "b" / "out")
    a = pd.read_parquet(tmp_path / "a" / "out" / "interactions.parquet")
    b = pd.read_parquet(tmp_path / "b" / "out" / "interactions.parquet")
    assert with_ts["n_interactions"] == without["n_interactions"]
    pd.testing.assert_frame_equal(a[["user", "item", "rating"]], b)


def test_ml1m_melu_join(tmp_path):
    out = tmp_path / "out"
    prepare("ml-1m", ml1m_raw(tmp_path), out)
    items = read_items(out).set_index("raw_item")
    assert items.index.tolist() == [1, 2, 5, 7, 11]  # 9 is never rated
    assert items.loc[7, "title"] == "Star Hop: Episode I"  # a colon inside a "::" file
    assert items.loc[2, "title"] == "Café Orbit"
    assert items.loc[5, "title"] == "Rivers of Tin, The" and items.loc[5, "year"] == 1996
    assert lists(items.loc[1, "genres"]) == ["Animation", "Children's", "Comedy"]  # from movies.dat
    assert lists(items.loc[1, "directors"]) == ["Ann Director"]
    # parenthetical credits stripped, repeated names kept once, order of first appearance
    assert lists(items.loc[1, "writers"]) == ["Ann Director", "Bob Writer"]
    assert lists(items.loc[1, "actors"]) == ["Tom Able", "Tim Baker", "Don Cole"]
    assert items.loc[1, "synopsis"] == 'A lantern maker finds "light" in the dark.'
    # "N/A" means missing; UTF-8 names survive
    assert lists(items.loc[2, "directors"]) == [] and pd.isna(items.loc[2, "synopsis"])
    assert lists(items.loc[2, "actors"]) == ["Zoë Actor", "Max Actor"]
    assert lists(items.loc[5, "directors"]) == ["Dee Director", "Eve Codirector"]
    assert items.loc[5, "synopsis"] == "A plot with a colon: it stays whole."
    # a rated movie MeLU lacks keeps its movies.dat metadata and gets empty credits
    assert items.loc[11, "title"] == "Lonely Plot" and lists(items.loc[11, "genres"]) == ["Thriller"]
    assert lists(items.loc[11, "writers"]) == [] and pd.isna(items.loc[11, "synopsis"])
    # MeLU's field 4 (Rated) is kept as `rated`; a movie MeLU lacks has none
    assert items["rated"].tolist()[:4] == ["G", "PG", "R", "PG"] and pd.isna(items.loc[11, "rated"])


def test_ml1m_rated_na_is_missing(tmp_path):
    items = DATASETS["ml-1m"].parser(ml1m_raw(tmp_path)).items.set_index("raw_item")
    assert items.loc[9, "rated"] is None  # "N/A" in MeLU (movie 9 is never rated, so prepare drops it)
    assert items.loc[11, "rated"] is None and items.loc[1, "rated"] == "G"


def test_threshold_and_contiguous_ids(tmp_path):
    out = tmp_path / "out"
    summary = prepare("ml-1m", ml1m_raw(tmp_path), out, rating_threshold=5)
    assert summary["n_interactions"] == 3 and summary["dropped_below_threshold"] == 8
    inter = pd.read_parquet(out / "interactions.parquet")
    assert (inter["rating"] >= 5).all()
    users = pd.read_parquet(out / "users.parquet")
    items = read_items(out)
    assert users["raw_user"].tolist() == [1, 3, 4]  # user 2 has no rating of 5: no id at all
    assert items["raw_item"].tolist() == [1, 2, 7]
    assert sorted(inter["user"].unique()) == list(range(len(users)))
    assert sorted(inter["item"].unique()) == list(range(len(items)))
    raw = dict(zip(users["user"], users["raw_user"], strict=True))
    raw_items = dict(zip(items["item"], items["raw_item"], strict=True))
    pairs = {(raw[u], raw_items[i]) for u, i in zip(inter["user"], inter["item"], strict=True)}
    assert pairs == {(1, 1), (3, 2), (4, 7)}


def test_threshold_keeping_nothing_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no interaction"):
        prepare("ml-1m", ml1m_raw(tmp_path), tmp_path / "out", rating_threshold=6)


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(KeyError, match="ml-100k, ml-1m"):
        prepare("ml-2m", tmp_path, tmp_path / "out")


# ------------------------------------------------------------------------------------------- bad input


def insert_line(path: Path, line_no: int, text: str, newline: str = "\n", encoding: str = "latin-1") -> None:
    lines = path.read_bytes().decode(encoding).split(newline)
    lines.insert(line_no - 1, text)
    path.write_bytes(newline.join(lines).encode(encoding))


@pytest.mark.parametrize(
    "bad",
    [
        "1::x::5::978300760",  # not a number
        "1::2",  # fields missing
        "1::2::3::4::5",  # a field too many
        "1:2:3:978300760",  # wrong separator
        "1::2::3.5::978300760x",
    ],
)
def test_malformed_ratings_line_names_file_and_line(tmp_path, bad):
    raw = ml1m_raw(tmp_path)
    insert_line(raw / "ratings.dat", 4, bad)
    with pytest.raises(ValueError, match=r"ratings\.dat, line 4\b"):
        prepare("ml-1m", raw, tmp_path / "out")


def test_malformed_u_data_line(tmp_path):
    raw = raw_dir_with(tmp_path, ML100K_FILES)
    insert_line(raw / "u.data", 14, "10\t3\t4")
    with pytest.raises(ValueError, match=r"u\.data, line 14\b"):
        prepare("ml-100k", raw, tmp_path / "out")


def test_malformed_u_item_line(tmp_path):
    raw = raw_dir_with(tmp_path, ML100K_FILES)
    insert_line(raw / "u.item", 3, "7|Too Few Fields (1999)|01-Jan-1999")
    with pytest.raises(ValueError, match=r"u\.item, line 3\b.*expected 24 fields"):
        prepare("ml-100k", raw, tmp_path / "out")


def test_malformed_movies_line(tmp_path):
    raw = ml1m_raw(tmp_path)
    insert_line(raw / "movies.dat", 2, "x3::Broken Id (1999)::Drama")
    with pytest.raises(ValueError, match=r"movies\.dat, line 2\b.*MovieID 'x3'"):
        prepare("ml-1m", raw, tmp_path / "out")


def test_malformed_extrainfos_line_with_crlf(tmp_path):
    raw = ml1m_raw(tmp_path)
    insert_line(raw / "movies_extrainfos.dat", 3, "3::Too::Short", newline="\r\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"movies_extrainfos\.dat, line 3\b.*expected 11 fields"):
        prepare("ml-1m", raw, tmp_path / "out")


def test_invalid_utf8_in_extrainfos(tmp_path):
    raw = ml1m_raw(tmp_path)
    path = raw / "movies_extrainfos.dat"
    lines = path.read_bytes().split(b"\r\n")
    lines[1] = lines[1].replace("Zoë".encode(), b"Zo\xeb")  # latin-1 byte in a UTF-8 file
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(ValueError, match=r"movies_extrainfos\.dat, line 2\b.*utf-8"):
        prepare("ml-1m", raw, tmp_path / "out")


def test_missing_raw_file(tmp_path):
    raw = ml1m_raw(tmp_path)
    (raw / "movies.dat").unlink()
    with pytest.raises(FileNotFoundError, match="movies.dat"):
        prepare("ml-1m", raw, tmp_path / "out")


# ------------------------------------------------------------------------------------ the real mirror

needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"offline mirror {MIRROR} not present")


@needs_mirror
def test_real_ml1m(tmp_path):
    materialize("ml-1m", tmp_path / "raw", str(MIRROR))
    summary = prepare("ml-1m", tmp_path / "raw", tmp_path / "out")
    assert (summary["n_users"], summary["n_items"]) == (6040, 3706)
    assert summary["n_interactions"] == 1_000_201
    items = read_items(tmp_path / "out")
    assert len(items) == 3706 and np.array_equal(items["item"], np.arange(3706))
    assert items["synopsis"].notna().mean() > 0.99
    toy_story = items[items["raw_item"] == 1].iloc[0]
    assert toy_story["title"] == "Toy Story" and toy_story["year"] == 1995 and toy_story["rated"] == "G"
    assert list(items.columns) == ["item", *ITEM_COLUMNS] and items["rated"].notna().mean() > 0.99


@needs_mirror
def test_real_ml100k(tmp_path):
    manifest = materialize("ml-100k", tmp_path / "raw", str(MIRROR))
    assert {f["name"] for f in manifest["files"]} == {"u.data", "u.item", "u.genre"}
    summary = prepare("ml-100k", tmp_path / "raw", tmp_path / "out")
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (943, 1682, 100_000)
    assert summary["has_timestamp"]


def test_kcore_mask_peels_until_stable():
    from specrec.data.prepare import kcore_mask

    # user 2 has one edge; removing it leaves item 12 with one edge, which goes too (cascade)
    users = np.array([0, 0, 0, 1, 1, 1, 2, 3, 3, 3])
    items = np.array([10, 11, 13, 10, 11, 13, 12, 10, 11, 12])
    keep = kcore_mask(users, items, 2)
    assert keep.tolist() == [True, True, True, True, True, True, False, True, True, False]
    assert kcore_mask(users, items, 1).all()
