"""DirectSpec's CiteULike split: parser and prepare() on tiny hand-made fixtures in the real format,
registration, and the real files of the offline mirror when it is present.

Fixtures (invented ids): `citeulike/train.csv` and `citeulike/test.csv`, a `user,item` header and CRLF
line ends like the real files; train lists (0, 4) twice (the real train.csv repeats 22 pairs), (1, 2) is
in both parts (the real files share 11 pairs), and user 4 and item 6 only occur in test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smoke import MIRROR
from specrec.data.download import materialize
from specrec.data.prepare import prepare
from specrec.data.sources import DATASETS, ITEM_COLUMNS
from specrec.data.sources.directspec import parse_directspec, read_pairs
from specrec.data.sources.readers import bad_rows_policy

FIXTURES = Path(__file__).parent / "fixtures"
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"offline mirror {MIRROR} not present")


def citeulike_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("train.csv", "test.csv"):
        shutil.copy(FIXTURES / "citeulike" / name, raw / name)
    return raw


def stats(out: Path) -> dict[str, tuple[int, int, int]]:
    """stats.csv as {part: (users, items, interactions)}; the first column names the part (all/train/test)."""
    frame = pd.read_csv(out / "stats.csv", index_col=0)[["users", "items", "interactions"]]
    return {part: tuple(int(v) for v in row) for part, row in frame.iterrows()}


def test_fixtures_have_crlf_line_ends():
    for name in ("train.csv", "test.csv"):
        data = (FIXTURES / "citeulike" / name).read_bytes()
        assert data.startswith(b"user,item\r\n") and data.count(b"\n") == data.count(b"\r\n")


def test_parser_reads_pairs_in_file_order(tmp_path):
    tables = parse_directspec(citeulike_raw(tmp_path))
    ratings = tables.ratings
    assert list(ratings.columns) == ["user", "item", "rating", "part"]
    assert ratings["user"].dtype == np.int64 and ratings["item"].dtype == np.int64
    assert (ratings["rating"] == 1.0).all()
    assert list(zip(ratings["part"], ratings["user"], ratings["item"], strict=True)) == [
        ("train", 0, 4), ("train", 0, 2), ("train", 1, 2), ("train", 1, 0), ("train", 2, 5),
        ("train", 0, 4), ("train", 3, 1),
        ("test", 0, 1), ("test", 1, 2), ("test", 2, 3), ("test", 4, 6),
    ]  # fmt: skip
    assert list(tables.items.columns) == ITEM_COLUMNS
    assert tables.items["raw_item"].tolist() == list(range(7))
    assert tables.items["title"].isna().all()


def test_prepare_drops_repeats_within_a_part_only(tmp_path):
    out = tmp_path / "out"
    summary = prepare("citeulike", citeulike_raw(tmp_path), out)
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (5, 7, 10)
    assert summary["duplicates"] == 1 and summary["provided_split"]
    assert stats(out) == {"all": (5, 7, 10), "test": (4, 4, 4), "train": (4, 5, 6)}


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        ("train.csv", "0,1\r\n1,2\r\n", 1, "expected the header"),
        ("test.csv", "user,item\r\n0,1\r\n1;2\r\n", 3, "expected 2 fields"),
        ("test.csv", "user,item\r\n0,1\r\n\r\n1,2,3\r\n", 4, "expected 2 fields"),
        ("train.csv", "user,item\r\n0,1\r\n1,x\r\n", 3, "item 'x' is not an integer"),
        ("train.csv", "user,item\r\n0,1\r\n1.5,2\r\n", 3, "user '1.5' is not an integer"),
        ("test.csv", "user,item\r\n0,1\r\n1,-2\r\n", 3, "item id -2 < 0"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, name, content, line, reason):
    raw = citeulike_raw(tmp_path)
    (raw / name).write_bytes(content.encode())
    with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')}, line {line}") as err:
        parse_directspec(raw)
    assert reason in str(err.value)


def test_warn_skips_bad_lines_and_counts_them(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"user,item\r\n0,1\r\n1,x\r\n2,3,4\r\n-3,5\r\n4,6\r\n")
    with bad_rows_policy("warn") as tally:
        frame = read_pairs(path, "train")
    assert list(zip(frame["user"], frame["item"], strict=True)) == [(0, 1), (4, 6)]
    assert tally.skipped == 3 and tally.files[str(path)]["first"] == 3


def test_a_missing_header_raises_even_under_warn(tmp_path):
    path = tmp_path / "test.csv"
    path.write_bytes(b"0,1\r\n1,2\r\n")
    with pytest.raises(ValueError, match=r"test\.csv, line 1: expected the header"), bad_rows_policy("warn"):
        read_pairs(path, "test")


def test_empty_file_is_an_error(tmp_path):
    raw = citeulike_raw(tmp_path)
    (raw / "test.csv").write_bytes(b"")
    with pytest.raises(ValueError, match="holds no lines"):
        parse_directspec(raw)


def test_registered_files_and_checksums():
    files = {raw.name: raw for raw in DATASETS["citeulike"].raw_files()}
    assert set(files) == {"train.csv", "test.csv"}
    for name, raw in files.items():
        assert raw.mirror_path == f"citeulike/{name}"
        assert (
            raw.remote.url
            == f"https://raw.githubusercontent.com/tanatosuu/directspec/main/Datasets/citeulike/{name}"
        )
        assert raw.checksum == raw.remote.checksum and raw.checksum.startswith("sha256:")


@needs_mirror
def test_real_citeulike(tmp_path):
    materialize("citeulike", tmp_path / "raw", str(MIRROR))
    summary = prepare("citeulike", tmp_path / "raw", tmp_path / "out")
    parts = stats(tmp_path / "out")
    # train.csv has the published 166,025 lines, but 22 of them repeat an earlier (user, item) line;
    # prepare keeps each pair once per part, so 166,003 train interactions remain. The 11 pairs that are
    # listed in both train and test stay in both parts.
    assert summary["duplicates"] == 22
    assert (summary["n_users"], summary["n_items"]) == (5_551, 16_980)
    assert parts["train"] == (5_551, 16_934, 166_025 - 22)
    assert parts["test"][0] == 5_551 and parts["test"][2] == 44_512
    assert parts["all"] == (5_551, 16_980, 166_003 + 44_512)
    raw_rows = pd.read_csv(tmp_path / "out" / "stats.csv", index_col=0)["raw_rows"]
    assert (raw_rows["train"], raw_rows["test"]) == (166_025, 44_512)  # the published figures
