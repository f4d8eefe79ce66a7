"""LightGCN's splits (gowalla, yelp2018, amazon-book): parser and prepare() on tiny hand-made fixtures in
the real format, registration, and the real files of the offline mirror when it is present.

Fixtures (invented ids, laid out like the mirror): `gowalla/train.txt` and `gowalla/test.txt`, one
`user item item ...` line per user. Items are unsorted within a line; user 4 and items 0 and 7 never
occur (so renumbering shows); user 2's train line has no items but a trailing space (as in Amazon-Book's
test.txt) and user 3's test line has no items and no space; the pair (5, 8) is in both parts.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smoke import MIRROR
from specrec.data.download import materialize
from specrec.data.prepare import prepare
from specrec.data.sources import DATASETS, ITEM_COLUMNS
from specrec.data.sources.lightgcn import parse_lightgcn, read_adjacency_lists
from specrec.data.sources.readers import bad_rows_policy

FIXTURES = Path(__file__).parent / "fixtures"
LIGHTGCN = ["amazon-book", "gowalla", "yelp2018"]
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"offline mirror {MIRROR} not present")


def gowalla_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("train.txt", "test.txt"):
        shutil.copy(FIXTURES / "gowalla" / name, raw / name)
    return raw


def stats(out: Path) -> dict[str, tuple[int, int, int]]:
    """stats.csv as {part: (users, items, interactions)}; the first column names the part (all/train/test)."""
    frame = pd.read_csv(out / "stats.csv", index_col=0)[["users", "items", "interactions"]]
    return {part: tuple(int(v) for v in row) for part, row in frame.iterrows()}


# ------------------------------------------------------------------------------------------- fixtures


def test_parser_reads_pairs_in_file_order(tmp_path):
    tables = parse_lightgcn(gowalla_raw(tmp_path))
    ratings = tables.ratings
    assert list(ratings.columns) == ["user", "item", "rating", "part"]
    assert ratings["user"].dtype == np.int64 and ratings["item"].dtype == np.int64
    assert (ratings["rating"] == 1.0).all()
    pairs = list(zip(ratings["part"], ratings["user"], ratings["item"], strict=True))
    assert pairs == [
        ("train", 0, 3), ("train", 0, 1), ("train", 0, 4),
        ("train", 1, 5), ("train", 1, 9), ("train", 1, 2), ("train", 1, 6),
        ("train", 3, 5), ("train", 3, 3),
        ("train", 5, 8),
        ("test", 0, 5), ("test", 1, 3), ("test", 2, 9), ("test", 5, 1), ("test", 5, 8),
    ]  # fmt: skip
    items = tables.items
    assert list(items.columns) == ITEM_COLUMNS
    assert items["raw_item"].tolist() == [1, 2, 3, 4, 5, 6, 8, 9]
    assert items["title"].isna().all() and items["synopsis"].isna().all() and items["year"].isna().all()
    assert all(
        value == [] for column in ("genres", "directors", "writers", "actors") for value in items[column]
    )


@pytest.mark.parametrize("dataset", LIGHTGCN)
def test_prepare_keeps_the_split_and_renumbers_in_raw_order(tmp_path, dataset):
    out = tmp_path / "out"
    summary = prepare(dataset, gowalla_raw(tmp_path), out)
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (5, 8, 15)
    assert summary["provided_split"] and not summary["has_timestamp"] and summary["duplicates"] == 0
    # user 2 only has a test item, user 3 only train items; (5, 8) counts in both parts
    assert stats(out) == {"all": (5, 8, 15), "test": (4, 5, 5), "train": (4, 8, 10)}
    users = pd.read_parquet(out / "users.parquet")
    assert users["raw_user"].tolist() == [0, 1, 2, 3, 5]
    items = pd.read_parquet(out / "items.parquet")
    assert items["raw_item"].tolist() == [1, 2, 3, 4, 5, 6, 8, 9]
    assert items["title"].isna().all()
    inter = pd.read_parquet(out / "interactions.parquet")
    assert dict(inter.dtypes.astype(str)) == {
        "user": "int32",
        "item": "int32",
        "rating": "float32",
        "part": "str",
    }
    last = inter[inter["user"] == 4]  # raw user 5: raw items 8 (train) and 1, 8 (test)
    assert sorted(zip(last["part"], last["item"], strict=True)) == [("test", 0), ("test", 6), ("train", 6)]


def test_crlf_blank_lines_and_repeated_spaces_are_tolerated(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"0 1  2\r\n\r\n1\t3 \r\n")
    frame = read_adjacency_lists(path, "train")
    assert list(zip(frame["user"], frame["item"], strict=True)) == [(0, 1), (0, 2), (1, 3)]


def test_an_empty_line_list_gives_no_pairs(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text("")
    assert read_adjacency_lists(path, "test").empty


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("0 1 2\n1 3 4x\n", 2, "item '4x' is not a non-negative integer id"),
        ("0 1\n\n2 3\nu7 4\n", 4, "user 'u7' is not a non-negative integer id"),
        ("0 1\n1 -2\n", 2, "item '-2'"),
        ("0 1\n1 2.0\n", 2, "item '2.0'"),
        ("0 1\n1 99999999999999999999\n", 2, "item '99999999999999999999'"),
        ("0 1\n1 2\n0 3\n", 3, "duplicate user"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, content, line, reason):
    raw = gowalla_raw(tmp_path)
    (raw / "test.txt").write_text(content)
    with pytest.raises(ValueError, match=rf"test\.txt, line {line}") as err:
        parse_lightgcn(raw)
    assert reason in str(err.value)


def test_warn_skips_whole_bad_lines_and_counts_them(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("0 1 2\n1 3 4x 5\nu2 6\n3 7\n0 8\n")
    with bad_rows_policy("warn") as tally:
        frame = read_adjacency_lists(path, "train")
    assert list(zip(frame["user"], frame["item"], strict=True)) == [(0, 1), (0, 2), (3, 7)]
    assert tally.skipped == 3  # lines 2 and 3 (bad ids) and 5 (user 0 again)
    assert tally.files[str(path)]["first"] == 2


def test_missing_split_file(tmp_path):
    raw = gowalla_raw(tmp_path)
    (raw / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test.txt"):
        prepare("gowalla", raw, tmp_path / "out")


def test_materialize_from_a_gz_fixture_mirror(tmp_path):
    mirror = tmp_path / "mirror" / "gowalla"
    mirror.mkdir(parents=True)
    train = (FIXTURES / "gowalla/train.txt").read_bytes()
    (mirror / "train.txt.gz").write_bytes(gzip.compress(train))
    shutil.copy(FIXTURES / "gowalla/test.txt", mirror / "test.txt")
    checksums = {
        name: "sha256:" + hashlib.sha256((FIXTURES / "gowalla" / name).read_bytes()).hexdigest()
        for name in ("train.txt", "test.txt")
    }
    source = DATASETS["gowalla"]
    source = replace(
        source,
        needs=tuple(
            tuple(replace(raw, checksum=checksums[raw.name]) for raw in need) for need in source.needs
        ),
    )
    raw = tmp_path / "raw"
    manifest = materialize(source, raw, str(mirror.parent))
    assert {f["name"] for f in manifest["files"]} == {"train.txt", "test.txt"}
    assert (raw / "train.txt").read_bytes() == train
    assert prepare("gowalla", raw, tmp_path / "out")["n_interactions"] == 15


# ------------------------------------------------------------------------------------------ registry


def test_registered_files_and_checksums():
    def files(dataset):
        return {raw.name: raw for raw in DATASETS[dataset].raw_files()}

    for dataset in LIGHTGCN:
        for name, raw in files(dataset).items():
            assert raw.mirror_path == f"{dataset}/{name}"
            assert raw.remote.url == (
                f"https://raw.githubusercontent.com/kuandeng/LightGCN/master/Data/{dataset}/{name}"
            )
            assert raw.remote.member is None
        assert set(files(dataset)) == {"train.txt", "test.txt"}
    gowalla = files("gowalla")
    assert (
        gowalla["train.txt"].checksum
        == gowalla["train.txt"].remote.checksum
        == ("sha256:7244696fdeb23911319cf7b689f2e15a3c4c92549c873a5677b44e3f13cc3e62")
    )
    assert gowalla["test.txt"].checksum == gowalla["test.txt"].remote.checksum is not None
    yelp = files("yelp2018")
    assert yelp["train.txt"].checksum is not None and yelp["train.txt"].remote.checksum is None  # rebuilt
    assert yelp["test.txt"].checksum == yelp["test.txt"].remote.checksum is not None
    book = files("amazon-book")
    assert book["train.txt"].checksum is None and book["train.txt"].remote.checksum is None
    assert book["test.txt"].checksum == book["test.txt"].remote.checksum is not None


# ------------------------------------------------------------------------------------- the real mirror


def prepare_from_mirror(dataset: str, tmp_path: Path) -> tuple[dict, dict]:
    materialize(dataset, tmp_path / "raw", str(MIRROR))
    summary = prepare(dataset, tmp_path / "raw", tmp_path / "out")
    return summary, stats(tmp_path / "out")


@needs_mirror
def test_real_gowalla(tmp_path):
    summary, parts = prepare_from_mirror("gowalla", tmp_path)
    assert (summary["n_users"], summary["n_items"], summary["duplicates"]) == (29_858, 40_981, 0)
    assert parts["all"] == (29_858, 40_981, 1_027_370)
    assert parts["train"] == (29_858, 40_981, 810_128)
    assert parts["test"][0] == 29_858 and parts["test"][2] == 217_242
    users = pd.read_parquet(tmp_path / "out" / "users.parquet")
    assert np.array_equal(users["raw_user"], users["user"])  # LightGCN's remap ids are kept


@needs_mirror
def test_real_yelp2018(tmp_path):
    summary, parts = prepare_from_mirror("yelp2018", tmp_path)
    assert (summary["n_users"], summary["n_items"], summary["duplicates"]) == (31_668, 38_048, 0)
    assert parts["all"] == (31_668, 38_048, 1_561_406)
    assert parts["train"] == (31_668, 38_048, 1_237_259)
    assert parts["test"][0] == 31_668 and parts["test"][2] == 324_147
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    assert np.array_equal(items["raw_item"], items["item"])


@needs_mirror
def test_real_amazon_book_lacks_its_train_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train\.txt"):
        materialize("amazon-book", tmp_path / "raw", str(MIRROR))
