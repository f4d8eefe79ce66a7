"""Book-Crossing (RippleNet's BX-Book-Ratings.csv) on an invented fixture.

tests/fixtures/book-crossing/BX-Book-Ratings.csv: the real format (header, `;`-separated, every field in
double quotes, latin-1, CRLF line ends) with invented users and ISBNs: ISBNs ending in X and x, a 9-digit
one, one with a latin-1 byte (`´`), implicit ratings (0), and (1004, 000000004x) rated twice (7 wins).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from specrec.data.prepare import prepare

FIXTURES = Path(__file__).parent / "fixtures"
NAME = "BX-Book-Ratings.csv"


def raw_dir(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "book-crossing" / NAME, raw / NAME)
    return raw


def insert_line(path: Path, line_no: int, text: str) -> None:
    lines = path.read_bytes().decode("latin-1").split("\r\n")
    lines.insert(line_no - 1, text)
    path.write_bytes("\r\n".join(lines).encode("latin-1"))


def test_tables(tmp_path):
    out = tmp_path / "out"
    summary = prepare("book-crossing", raw_dir(tmp_path), out)
    assert summary["rating_threshold"] is None  # every rating, implicit 0 included, is positive
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (10, 11, 12)
    assert summary["duplicates"] == 1 and not summary["has_timestamp"]
    items = pd.read_parquet(out / "items.parquet")
    raw_items = items["raw_item"].tolist()
    assert all(isinstance(isbn, str) for isbn in raw_items)
    assert raw_items == sorted(raw_items)  # ids in sorted order of the raw ISBN strings
    assert {"000000002X", "000000004x", "123456789", "0000000119´"} <= set(raw_items)  # latin-1 decoded
    assert items["title"].isna().all() and items["year"].isna().all()
    assert all(len(v) == 0 for v in items["genres"])
    users = pd.read_parquet(out / "users.parquet")
    assert users["raw_user"].tolist()[:3] == [1001, 1002, 1003]
    inter = pd.read_parquet(out / "interactions.parquet")
    item_of = dict(zip(items["raw_item"], items["item"], strict=True))
    user_of = dict(zip(users["raw_user"], users["user"], strict=True))
    row = inter[(inter["user"] == user_of[1004]) & (inter["item"] == item_of["000000004x"])]
    assert row["rating"].tolist() == [7.0]  # the last of the two ratings
    assert (inter["rating"] == 0).sum() == 5


def test_explicit_ratings_only(tmp_path):
    summary = prepare("book-crossing", raw_dir(tmp_path), tmp_path / "out", rating_threshold=1)
    assert summary["n_interactions"] == 7 and summary["dropped_below_threshold"] == 5


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('"1020";"0000000011"', "expected 3 fields"),
        ('"1020";"0000000011";"5";"9"', "expected 3 fields"),
        ('1020;"0000000011";"5"', "double quotes"),
        ('"1020";"0000000011";"five"', "Book-Rating 'five'"),
        ('"10x";"0000000011";"5"', "User-ID '10x'"),
        ('"1020";"0000000011";"11"', "outside 0..10"),
        ('"1020";"";"5"', "empty ISBN"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, reason):
    raw = raw_dir(tmp_path)
    insert_line(raw / NAME, 5, bad)
    with pytest.raises(ValueError, match=rf"BX-Book-Ratings\.csv, line 5\b.*{reason}"):
        prepare("book-crossing", raw, tmp_path / "out")


def test_malformed_lines_under_warn_are_skipped_and_counted(tmp_path, caplog):
    raw = raw_dir(tmp_path)
    insert_line(raw / NAME, 5, '"1020";"0000000011";"five"')
    insert_line(raw / NAME, 8, '"1020";"0000000011"')
    insert_line(raw / NAME, 10, '"1021";"";"5"')
    with caplog.at_level(logging.WARNING, logger="specrec.data"):
        summary = prepare("book-crossing", raw, tmp_path / "out", bad_rows="warn")
    assert summary["bad_rows_skipped"] == 3
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (10, 11, 12)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 3" in warnings[0] and "line 5" in warnings[0]


def test_wrong_header(tmp_path):
    raw = raw_dir(tmp_path)
    path = raw / NAME
    path.write_bytes(path.read_bytes().replace(b'"User-ID"', b'"UserID"', 1))
    with pytest.raises(ValueError, match=r"BX-Book-Ratings\.csv, line 1\b.*header"):
        prepare("book-crossing", raw, tmp_path / "out", bad_rows="warn")
