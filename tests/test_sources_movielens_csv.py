"""The MovieLens CSV releases (ml-latest-small, ml-20m) on invented fixtures, and the block reader.

Fixtures (tests/fixtures/ml-latest-small/, tests/fixtures/ml-20m/) are hand-made in the real format:
ratings.csv `userId,movieId,rating,timestamp` with header and ratings in halves; movies.csv
`movieId,title,genres` with quoted titles (a comma inside, doubled quotes), UTF-8 (`Café`), a title
without a year, "(no genres listed)", and a movie nobody rates. In ml-latest-small user 2 rates movie 4
twice (the last, 4.5, wins); in ml-20m four ratings are below 4.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smoke import MIRROR
from specrec import tables
from specrec.data.download import materialize
from specrec.data.prepare import prepare
from specrec.data.sources import DATASETS
from specrec.data.sources.readers import bad_rows_policy, read_numeric_csv

FIXTURES = Path(__file__).parent / "fixtures"
FILES = ("ratings.csv", "movies.csv")
DTYPES = {"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.int64}
HEADER = ("userId", "movieId", "rating", "timestamp")


def raw_dir(tmp_path: Path, dataset: str) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy(FIXTURES / dataset / name, raw / name)
    return raw


def insert_line(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines.insert(line_no - 1, text)
    path.write_text("\n".join(lines), encoding="utf-8")


# ----------------------------------------------------------------------------------------- the tables


def test_ml_latest_small_tables(tmp_path):
    out = tmp_path / "out"
    summary = prepare("ml-latest-small", raw_dir(tmp_path, "ml-latest-small"), out)
    assert summary["n_users"] == 3 and summary["n_items"] == 4 and summary["n_interactions"] == 9
    assert summary["duplicates"] == 1 and summary["bad_rows_skipped"] == 0
    assert summary["rating_threshold"] is None and summary["has_timestamp"]
    inter = pd.read_parquet(out / "interactions.parquet")
    users = pd.read_parquet(out / "users.parquet")
    items = pd.read_parquet(out / "items.parquet").set_index("raw_item")
    assert users["raw_user"].tolist() == [1, 2, 5] and str(users["raw_user"].dtype) == "int64"
    # the repeated (2, 4) keeps the last rating and its timestamp
    row = inter[(inter["user"] == 1) & (inter["item"] == items.loc[4, "item"])]
    assert row["rating"].tolist() == [4.5] and row["timestamp"].tolist() == [1445716000]
    assert sorted(inter["rating"].unique().tolist()) == [0.5, 1.5, 2.5, 3.0, 3.5, 4.0, 4.5]
    assert items.index.tolist() == [1, 3, 4, 6]  # movie 5 is never rated
    assert items.loc[3, "title"] == "Rivers of Tin, The" and items.loc[3, "year"] == 1996
    assert items.loc[4, "title"] == 'Say "Cheese"' and items.loc[4, "year"] == 2001
    assert [str(g) for g in items.loc[1, "genres"]] == ["Adventure", "Animation", "Children"]
    # UTF-8, no year, and "(no genres listed)" meaning none
    assert items.loc[6, "title"] == "Café Orbit" and pd.isna(items.loc[6, "year"])
    assert len(items.loc[6, "genres"]) == 0
    assert items["synopsis"].isna().all() and all(len(v) == 0 for v in items["directors"])
    assert items["rated"].isna().all()  # only ML-1M (MeLU) knows MPAA ratings


def test_parser_gives_compact_dtypes(tmp_path):
    tables = DATASETS["ml-20m"].parser(raw_dir(tmp_path, "ml-20m"))
    assert dict(tables.ratings.dtypes.astype(str)) == {
        "user": "int32",
        "item": "int32",
        "rating": "float32",
        "timestamp": "int64",
    }
    assert len(tables.ratings) == 9 and len(tables.items) == 5


def test_ml20m_keeps_ratings_of_4_and_up(tmp_path):
    out = tmp_path / "out"
    summary = prepare("ml-20m", raw_dir(tmp_path, "ml-20m"), out)
    assert summary["rating_threshold"] == 4.0 and summary["dropped_below_threshold"] == 4
    inter = pd.read_parquet(out / "interactions.parquet")
    assert (inter["rating"] >= 4).all() and len(inter) == 5
    items = pd.read_parquet(out / "items.parquet")
    assert items["raw_item"].tolist() == [2, 32, 47]  # 29 only has ratings below 4
    assert items["title"].tolist()[1] == "Twelve Clocks (a.k.a. 12 Clocks)"
    everything = prepare("ml-20m", raw_dir(tmp_path, "ml-20m"), tmp_path / "all", rating_threshold=0)
    assert everything["n_interactions"] == 9


# ------------------------------------------------------------------------------------------ bad lines


@pytest.mark.parametrize(
    "bad",
    [
        "1,x,4.0,964982703",  # not a number
        "1,2,4.0",  # a field missing
        "1,2,4.0,964982703,7",  # a field too many
        "1;2;4.0;964982703",  # wrong separator
        "1,2.5,4.0,964982703",  # a fractional id
        "1,2,4.0,",  # an empty field
    ],
)
def test_malformed_ratings_line_names_file_and_line(tmp_path, bad):
    raw = raw_dir(tmp_path, "ml-latest-small")
    insert_line(raw / "ratings.csv", 4, bad)
    with pytest.raises(ValueError, match=r"ratings\.csv, line 4\b"):
        prepare("ml-latest-small", raw, tmp_path / "out")


def test_malformed_ratings_line_under_warn_is_skipped_and_counted(tmp_path, caplog):
    raw = raw_dir(tmp_path, "ml-latest-small")
    insert_line(raw / "ratings.csv", 4, "1,x,4.0,964982703")
    insert_line(raw / "ratings.csv", 9, "7,8")
    with caplog.at_level(logging.WARNING, logger="specrec.data"):
        summary = prepare("ml-latest-small", raw, tmp_path / "out", bad_rows="warn")
    assert summary["bad_rows_skipped"] == 2 and summary["n_interactions"] == 9  # as without them
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one per file
    assert "skipped 2" in warnings[0] and "ratings.csv" in warnings[0] and "line 4" in warnings[0]
    # the count reaches the datasets table (and so the overview page), not only the job log
    stats = pd.read_csv(tmp_path / "out" / "stats.csv").set_index("split")
    assert stats.loc["all", "skipped_rows"] == 2
    prepared = tmp_path / "data" / "ml-latest-small" / "stats.csv"
    prepared.parent.mkdir(parents=True)
    shutil.copy(tmp_path / "out" / "stats.csv", prepared)
    tables.dataset_table([prepared], tmp_path / "d.csv", tmp_path / "d.md")
    header, _, row = (tmp_path / "d.md").read_text().splitlines()[:3]
    assert dict(zip(header.split("|"), row.split("|"), strict=True))[" Skipped rows "].strip() == "2"


def test_wrong_header_is_an_error_even_under_warn(tmp_path):
    raw = raw_dir(tmp_path, "ml-20m")
    text = (raw / "ratings.csv").read_text().replace("userId,movieId", "user,movie", 1)
    (raw / "ratings.csv").write_text(text)
    with pytest.raises(ValueError, match=r"ratings\.csv, line 1\b.*header"):
        prepare("ml-20m", raw, tmp_path / "out", bad_rows="warn")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("7,Too Many (1999),Drama,Extra", "expected 3 fields"),
        ("x7,Bad Id (1999),Drama", "movieId 'x7'"),
        ('7,"Unclosed (1999,Drama', "not valid CSV|expected 3 fields"),
    ],
)
def test_malformed_movies_line(tmp_path, bad, reason):
    raw = raw_dir(tmp_path, "ml-latest-small")
    insert_line(raw / "movies.csv", 3, bad)
    with pytest.raises(ValueError, match=rf"movies\.csv, line 3\b.*({reason})"):
        prepare("ml-latest-small", raw, tmp_path / "out")


def test_malformed_movies_line_under_warn(tmp_path):
    raw = raw_dir(tmp_path, "ml-latest-small")
    insert_line(raw / "movies.csv", 3, "x7,Bad Id (1999),Drama")
    insert_line(raw / "movies.csv", 5, '8,"Unclosed (1999,Drama')  # spoils its own line only
    summary = prepare("ml-latest-small", raw, tmp_path / "out", bad_rows="warn")
    assert summary["bad_rows_skipped"] == 2
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    assert items["title"].tolist() == ["Paper Lanterns", "Rivers of Tin, The", 'Say "Cheese"', "Café Orbit"]


def test_unknown_policy_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="bad_rows must be one of error, warn"):
        prepare("ml-20m", raw_dir(tmp_path, "ml-20m"), tmp_path / "out", bad_rows="ignore")


# -------------------------------------------------------------------------------------- block reader


def many_ratings(path: Path, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user": rng.integers(1, 500, n),
            "item": rng.integers(1, 130_000, n),
            "rating": rng.integers(1, 11, n) / 2,
            "timestamp": rng.integers(789_652_009, 1_427_784_002, n),
        }
    )
    with open(path, "w") as handle:
        handle.write(",".join(HEADER) + "\n")
        frame.to_csv(handle, header=False, index=False)
    return frame.astype(DTYPES)


def test_blocks_give_the_same_frame_as_one_read(tmp_path):
    path = tmp_path / "ratings.csv"
    expected = many_ratings(path, 2000)
    for block_bytes in (64, 1000, 1 << 20):  # many blocks, a few, one
        frame = read_numeric_csv(path, list(DTYPES), DTYPES, header=HEADER, block_bytes=block_bytes)
        pd.testing.assert_frame_equal(frame, expected)


def test_bad_line_number_is_right_across_blocks(tmp_path):
    path = tmp_path / "ratings.csv"
    many_ratings(path, 500)
    insert_line(path, 377, "3,4,five,964982703")
    with pytest.raises(ValueError, match=r"ratings\.csv, line 377\b.*rating 'five'"):
        read_numeric_csv(path, list(DTYPES), DTYPES, header=HEADER, block_bytes=200)
    with bad_rows_policy("warn") as tally:
        frame = read_numeric_csv(path, list(DTYPES), DTYPES, header=HEADER, block_bytes=200)
    assert len(frame) == 500 and tally.skipped == 1
    assert tally.files[str(path)]["first"] == 377
    assert dict(frame.dtypes.astype(str))["user"] == "int32"


def test_ids_too_large_for_int32_are_refused(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,3000000000,4.0,964982703\n")
    with pytest.raises(ValueError, match="item values .* do not fit in int32"):
        read_numeric_csv(path, list(DTYPES), DTYPES, header=HEADER)


def test_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_bytes(b"userId,movieId,rating,timestamp\r\n1,2,4.0,5\r\n\r\n3,4,0.5,6\r\n")
    frame = read_numeric_csv(path, list(DTYPES), DTYPES, header=HEADER)
    assert frame.to_numpy().tolist() == [[1, 2, 4.0, 5], [3, 4, 0.5, 6]]


# ------------------------------------------------------------------------------------ the real mirror

needs_mirror = pytest.mark.skipif(
    not (MIRROR / "ml-latest-small").is_dir(), reason=f"offline mirror {MIRROR} not present"
)


@needs_mirror
def test_real_ml_latest_small(tmp_path):
    manifest = materialize("ml-latest-small", tmp_path / "raw", str(MIRROR))  # verified: sha256 pinned
    assert {f["name"] for f in manifest["files"]} == {"ratings.csv", "movies.csv"}
    summary = prepare("ml-latest-small", tmp_path / "raw", tmp_path / "out")
    assert (summary["n_users"], summary["n_items"], summary["n_interactions"]) == (610, 9724, 100_836)
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    toy_story = items[items["raw_item"] == 1].iloc[0]
    assert toy_story["title"] == "Toy Story" and toy_story["year"] == 1995


# ------------------------------------------------------------------- the older formats follow the policy


def test_ml1m_and_ml100k_readers_follow_the_policy(tmp_path):
    ml1m = tmp_path / "ml1m"
    ml1m.mkdir()
    for name in ("ml-1m/ratings.dat", "ml-1m/movies.dat", "ml-1m-melu-extrainfos/movies_extrainfos.dat"):
        shutil.copy(FIXTURES / name, ml1m / Path(name).name)
    clean = prepare("ml-1m", ml1m, tmp_path / "clean")
    with open(ml1m / "ratings.dat", "a") as handle:
        handle.write("1::x::5::978300760\n9::9\n")
    with open(ml1m / "movies.dat", "a", encoding="latin-1") as handle:
        handle.write("x3::Broken Id (1999)::Drama\n")
    with pytest.raises(ValueError, match=r"ratings\.dat, line \d+"):
        prepare("ml-1m", ml1m, tmp_path / "out")
    summary = prepare("ml-1m", ml1m, tmp_path / "out", bad_rows="warn")
    assert summary["bad_rows_skipped"] == 3
    assert summary["n_interactions"] == clean["n_interactions"]

    ml100k = tmp_path / "ml100k"
    ml100k.mkdir()
    for name in ("u.data", "u.item", "u.genre"):
        shutil.copy(FIXTURES / "ml-100k" / name, ml100k / name)
    clean = prepare("ml-100k", ml100k, tmp_path / "clean100k")
    item = (ml100k / "u.item").read_bytes().split(b"\n")
    item.insert(2, b"7|Flagged Wrong (1999)|01-Jan-1999||http://x|" + b"|".join([b"0"] * 18 + [b"y"]))
    (ml100k / "u.item").write_bytes(b"\n".join(item))
    with pytest.raises(ValueError, match=r"u\.item, line 3\b.*flag 'Western' 'y'"):
        prepare("ml-100k", ml100k, tmp_path / "out100k")
    summary = prepare("ml-100k", ml100k, tmp_path / "out100k", bad_rows="warn")
    assert summary["bad_rows_skipped"] == 1 and summary["n_items"] == clean["n_items"]
    items = pd.read_parquet(tmp_path / "out100k" / "items.parquet")
    expected = pd.read_parquet(tmp_path / "clean100k" / "items.parquet")
    pd.testing.assert_frame_equal(items, expected)
