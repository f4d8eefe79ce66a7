"""Where each dataset's raw files come from, and how to read a folder of them into raw tables.

A `DatasetSource` is the single place that knows a dataset: the files it needs (their canonical download,
their place in an offline mirror, their checksum) and the parser that reads them. Adding a dataset means
registering one `DatasetSource` plus its parser; download.py and prepare.py stay untouched.

The readers here are vectorised (pandas C engine or whole-column string operations) because ML-1M has a
million rating lines. When a fast read fails, a slower pass over the same file finds the first bad line,
so every error names the file and the 1-based line number.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from specrec.registry import Registry

ITEM_COLUMNS = ["raw_item", "title", "year", "genres", "directors", "writers", "actors", "synopsis"]
LIST_COLUMNS = ["genres", "directors", "writers", "actors"]
MISSING = "N/A"  # MeLU's marker for an unknown field


@dataclass(frozen=True)
class Remote:
    """A canonical download: `url` with `checksum` ("md5:<hex>" / "sha256:<hex>") of the downloaded bytes.

    `member` is the path inside a zip archive, or None when the URL is the raw file itself.
    """

    url: str
    checksum: str | None
    member: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RawFile:
    """One raw file: its canonical `name` under raw_dir, its path in a mirror (which may add `.gz`),
    the checksum of its uncompressed content (None where no trustworthy one is known) and, if it can be
    downloaded, where from."""

    name: str
    mirror_path: str
    checksum: str | None = None
    remote: Remote | None = None


@dataclass
class RawTables:
    """What a parser returns, still in raw ids.

    ratings: user, item, rating[, timestamp] in file order (file order decides which duplicate is "last").
    items: ITEM_COLUMNS, one row per raw item id, lists as Python lists, missing synopsis as None.
    """

    ratings: pd.DataFrame
    items: pd.DataFrame


@dataclass(frozen=True)
class DatasetSource:
    """A dataset: the raw files it needs and the parser that reads them.

    `needs` holds one tuple per needed file with the acceptable alternatives in order of preference
    (ML-1M's ratings come either as the canonical ratings.dat or as the mirror's timestamp-less copy).
    """

    name: str
    needs: tuple[tuple[RawFile, ...], ...]
    parser: Callable[[Path], RawTables]
    default_rating_threshold: float | None = None

    def raw_files(self) -> list[RawFile]:
        return [raw for need in self.needs for raw in need]


DATASETS: Registry[DatasetSource] = Registry("dataset")


def get_source(dataset: str | DatasetSource) -> DatasetSource:
    """Accept a registered name or a DatasetSource (tests pass sources with their own checksums)."""
    return dataset if isinstance(dataset, DatasetSource) else DATASETS[dataset]


# --------------------------------------------------------------------------------------------- readers


def malformed(path: Path, line_no: int, line: str, reason: str) -> ValueError:
    shown = line if len(line) <= 200 else line[:200] + "..."
    return ValueError(f"malformed line in {path}, line {line_no}: {reason}: {shown!r}")


def read_text(path: Path, encoding: str) -> str:
    """Whole file as text; a decoding error is reported with its line number like any other bad line."""
    data = Path(path).read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line_no = data.count(b"\n", 0, err.start) + 1
        line = data.split(b"\n")[line_no - 1].decode(encoding, errors="replace")
        raise malformed(path, line_no, line, f"not valid {encoding}") from None


def read_fields(path: Path, sep: str, n_fields: int, encoding: str) -> pd.DataFrame:
    """Split every non-blank line on `sep` into exactly `n_fields` string columns (0..n-1).

    The index is the 1-based line number, so later checks can report where a bad value sits. Lines are
    split on "\\n" only: str.splitlines would also break at latin-1's \\x85 and similar characters.
    """
    lines = pd.Series(read_text(path, encoding).split("\n"), dtype=object)
    lines.index = np.arange(1, len(lines) + 1)
    lines = lines.str.removesuffix("\r")  # MeLU's files have CRLF line ends
    lines = lines[lines.str.strip() != ""]
    parts = lines.str.split(sep, regex=False)
    counts = parts.str.len()
    wrong = counts != n_fields
    if wrong.any():
        line_no = int(wrong.idxmax())
        reason = f"expected {n_fields} fields separated by {sep!r}, found {counts[line_no]}"
        raise malformed(path, line_no, lines[line_no], reason)
    frame = pd.DataFrame(parts.tolist(), index=lines.index, columns=range(n_fields))
    frame.attrs["sep"] = sep  # lets to_numbers show a bad line as it was written
    return frame


def to_numbers(fields: pd.DataFrame, path: Path, column: int, name: str, integer: bool = True) -> pd.Series:
    """Column `column` of read_fields output as numbers; the first non-number raises with its line."""
    text = fields[column].str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna()
    if integer:
        bad |= values.fillna(0) % 1 != 0
    if bad.any():
        line_no = int(bad.idxmax())
        kind = "an integer" if integer else "a number"
        shown = fields.attrs.get("sep", " ").join(fields.loc[line_no])
        raise malformed(path, line_no, shown, f"{name} {text[line_no]!r} is not {kind}")
    return values.astype("int64") if integer else values.astype("float64")


def read_numeric(
    path: Path, sep: str, names: Sequence[str], float_columns: Sequence[str] = ("rating",)
) -> pd.DataFrame:
    """Read an all-numeric delimited file (u.data, ratings.dat) fast, with exact errors on bad lines.

    The C engine only takes one-character separators, so "::" is read as ":" and the empty columns
    between fields are checked to be empty. Anything unexpected (a parser error, a missing field, a
    non-number) falls back to the slow line-aware reader, which raises naming the offending line.
    """
    char, width = sep[0], len(sep)
    if sep != char * width:
        raise ValueError(f"read_numeric needs a separator made of one repeated character, got {sep!r}")
    n_columns = len(names) + (len(names) - 1) * (width - 1)
    real = list(range(0, n_columns, width))
    try:
        frame = pd.read_csv(
            path, sep=char, header=None, engine="c", quoting=csv.QUOTE_NONE, encoding="latin-1"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        frame = None
    if frame is None or not _numeric_frame_ok(frame, n_columns, real, names, float_columns):
        _raise_first_bad_line(path, sep, names, float_columns)
    out = frame[real].copy()
    out.columns = list(names)
    return out.astype({name: "float64" if name in float_columns else "int64" for name in names})


def _numeric_frame_ok(
    frame: pd.DataFrame, n_columns: int, real: list[int], names: Sequence[str], float_columns: Sequence[str]
) -> bool:
    if frame.shape[1] != n_columns or len(frame) == 0:
        return False
    gaps = [c for c in frame.columns if c not in real]
    if gaps and frame[gaps].notna().to_numpy().any():
        return False
    for column, name in zip(real, names, strict=True):
        values = frame[column]
        wanted = pd.api.types.is_numeric_dtype if name in float_columns else pd.api.types.is_integer_dtype
        if not wanted(values) or values.isna().any():
            return False
    return True


def _raise_first_bad_line(path: Path, sep: str, names: Sequence[str], float_columns: Sequence[str]) -> None:
    fields = read_fields(path, sep, len(names), "latin-1")
    if fields.empty:
        raise ValueError(f"{path} holds no data lines")
    for column, name in enumerate(names):
        to_numbers(fields, path, column, name, integer=name not in float_columns)
    raise ValueError(f"{path} could not be parsed as {len(names)} numeric fields separated by {sep!r}")


def raw_path(raw_dir: Path, name: str) -> Path:
    path = Path(raw_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"raw file {path} is missing; run materialize first")
    return path


def first_present(raw_dir: Path, names: Sequence[str]) -> Path:
    """The first of several alternative raw files that exists (materialize leaves exactly one)."""
    for name in names:
        if (Path(raw_dir) / name).is_file():
            return Path(raw_dir) / name
    raise FileNotFoundError(f"none of {', '.join(names)} found in {raw_dir}; run materialize first")


def split_title_year(full: pd.Series) -> tuple[pd.Series, pd.Series]:
    """'Shanghai Triad (Yao a yao) (1995)' -> ('Shanghai Triad (Yao a yao)', 1995).

    The greedy first group makes the last "(dddd)" the year; text after it (ML-100K's "(V)") is kept.
    """
    full = full.str.strip()
    parts = full.str.extract(r"^(?P<title>.*)\((?P<year>\d{4})\)(?P<rest>.*)$")
    joined = (parts["title"].str.strip() + " " + parts["rest"].str.strip()).str.strip()
    title = joined.where(parts["year"].notna(), full)
    return title, pd.to_numeric(parts["year"]).astype("Int16")


def split_list(values: pd.Series, sep: str, strip_credits: bool = False) -> list[list[str]]:
    """'A, B (screenplay), B' -> ['A', 'B']: split, drop 'N/A'/blank, drop parenthetical credits, dedupe.

    Credits like "(screenplay)" or "(co-director)" describe a role, not a person; removing them makes
    the same person one entity across movies (for knowledge-graph edges), and dedupes repeated names.
    """
    text = values.fillna("").where(values.str.strip() != MISSING, "")
    if strip_credits:
        for _ in range(2):  # the innermost parentheses go first; twice covers one level of nesting
            text = text.str.replace(r"\s*\([^()]*\)", "", regex=True)
    long = text.str.split(sep, regex=False).explode().str.strip()
    long = long[long.notna() & (long != "") & (long != MISSING)]
    frame = long.rename("value").rename_axis("row").reset_index().drop_duplicates()
    grouped = frame.groupby("row", sort=False)["value"].agg(list)
    return [grouped.get(row, []) for row in values.index]  # metadata is small: a few thousand rows


def check_unique_ids(ids: pd.Series, path: Path, what: str) -> None:
    dup = ids.duplicated()
    if dup.any():
        line_no = int(dup.idxmax())
        raise ValueError(f"malformed {path}, line {line_no}: duplicate {what} {ids[line_no]}")


# ------------------------------------------------------------------------------------------------ ML-1M

ML1M_ZIP = Remote(
    "https://files.grouplens.org/datasets/movielens/ml-1m.zip", "md5:c4d9eecfca2ab87c1945afe126590906"
)
MELU_EXTRAINFOS_URL = (
    "https://raw.githubusercontent.com/hoyeoplee/MeLU/master/movielens/ml-1m/movies_extrainfos.dat"
)
MELU_EXTRAINFOS_SHA256 = "sha256:18432b1713b66a5262c11f6d929801a6e6f414d861cd2adf191dfba61e45c74d"
ML1M_RATINGS = ("ratings.dat", "ratings_no_timestamp.dat")


def parse_ml1m(raw_dir: Path) -> RawTables:
    """ML-1M ratings + movies.dat (title, year, genres) + MeLU extrainfos (credits, synopsis)."""
    ratings_path = first_present(raw_dir, ML1M_RATINGS)
    names = ["user", "item", "rating"] + (["timestamp"] if ratings_path.name == "ratings.dat" else [])
    ratings = read_numeric(ratings_path, "::", names)
    items = _ml1m_movies(raw_path(raw_dir, "movies.dat"))
    extra = _melu_extrainfos(raw_path(raw_dir, "movies_extrainfos.dat"))
    items = items.merge(extra, on="raw_item", how="left", validate="one_to_one")
    for column in ("directors", "writers", "actors"):
        items[column] = [v if isinstance(v, list) else [] for v in items[column]]
    items["synopsis"] = items["synopsis"].astype(object).where(items["synopsis"].notna(), None)
    return RawTables(ratings=ratings, items=items[ITEM_COLUMNS])


def _ml1m_movies(path: Path) -> pd.DataFrame:
    """movies.dat: latin-1, `MovieID::Title (Year)::Genre|Genre`."""
    fields = read_fields(path, "::", 3, "latin-1")
    ids = to_numbers(fields, path, 0, "MovieID")
    check_unique_ids(ids, path, "MovieID")
    title, year = split_title_year(fields[1])
    genres = split_list(fields[2], "|")
    return pd.DataFrame({"raw_item": ids, "title": title, "year": year, "genres": genres}).reset_index(
        drop=True
    )


def _melu_extrainfos(path: Path) -> pd.DataFrame:
    """MeLU movies_extrainfos.dat: UTF-8, CRLF, 11 `::` fields, "N/A" for missing.

    MovieID::Title::Year::Rated::Released::Genre::Director::Writer::Actors::Plot::Poster
    """
    fields = read_fields(path, "::", 11, "utf-8")
    ids = to_numbers(fields, path, 0, "MovieID")
    check_unique_ids(ids, path, "MovieID")
    plot = fields[9].str.strip()
    synopsis = plot.where((plot != MISSING) & (plot != ""), None)
    return pd.DataFrame(
        {
            "raw_item": ids,
            "directors": split_list(fields[6], ",", strip_credits=True),
            "writers": split_list(fields[7], ",", strip_credits=True),
            "actors": split_list(fields[8], ",", strip_credits=True),
            "synopsis": synopsis.astype(object),
        }
    ).reset_index(drop=True)


DATASETS.register("ml-1m")(
    DatasetSource(
        name="ml-1m",
        needs=(
            (
                RawFile(
                    "ratings.dat",
                    "ml-1m/ratings.dat",
                    None,
                    Remote(ML1M_ZIP.url, ML1M_ZIP.checksum, "ml-1m/ratings.dat"),
                ),
                # the mirror's reconstruction (no timestamps); it exists nowhere upstream, hence no remote
                RawFile(
                    "ratings_no_timestamp.dat",
                    "ml-1m/ratings_no_timestamp.dat",
                    "sha256:b153e8821b3b52d168f67097d5c24c737eeacae03fdf3500a3ce232b872f144e",
                ),
            ),
            (
                RawFile(
                    "movies.dat",
                    "ml-1m/movies.dat",
                    "sha256:0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
                    Remote(ML1M_ZIP.url, ML1M_ZIP.checksum, "ml-1m/movies.dat"),
                ),
            ),
            (
                RawFile(
                    "movies_extrainfos.dat",
                    "ml-1m-melu-extrainfos/movies_extrainfos.dat",
                    MELU_EXTRAINFOS_SHA256,
                    Remote(MELU_EXTRAINFOS_URL, MELU_EXTRAINFOS_SHA256),
                ),
            ),
        ),
        parser=parse_ml1m,
        default_rating_threshold=None,  # every rating is a positive interaction
    )
)


# ---------------------------------------------------------------------------------------------- ML-100K

ML100K_ZIP = Remote(
    "https://files.grouplens.org/datasets/movielens/ml-100k.zip", "md5:0e33842e24a9c977be4e0107933c0723"
)


def parse_ml100k(raw_dir: Path) -> RawTables:
    """ML-100K: u.data (tab-separated, with timestamps), u.item + u.genre (title, year, genres)."""
    ratings = read_numeric(raw_path(raw_dir, "u.data"), "\t", ["user", "item", "rating", "timestamp"])
    genre_names = _ml100k_genres(raw_path(raw_dir, "u.genre"))
    items = _ml100k_items(raw_path(raw_dir, "u.item"), genre_names)
    return RawTables(ratings=ratings, items=items)


def _ml100k_genres(path: Path) -> list[str]:
    """u.genre: `name|index` lines; the index is the position of the flag in u.item."""
    fields = read_fields(path, "|", 2, "latin-1")
    index = to_numbers(fields, path, 1, "genre index")
    if sorted(index) != list(range(len(index))):
        raise ValueError(f"{path}: genre indices must be 0..{len(index) - 1}, got {sorted(index)}")
    return fields[0].str.strip().to_numpy()[np.argsort(index.to_numpy())].tolist()


def _ml100k_items(path: Path, genre_names: list[str]) -> pd.DataFrame:
    """u.item: latin-1, `id|title (year)|release date|video release|IMDb URL|<one 0/1 flag per genre>`."""
    fields = read_fields(path, "|", 5 + len(genre_names), "latin-1")
    ids = to_numbers(fields, path, 0, "movie id")
    check_unique_ids(ids, path, "movie id")
    flags = pd.DataFrame(
        {g: to_numbers(fields, path, 5 + k, f"flag {g!r}") for k, g in enumerate(genre_names)}
    )
    flags.columns.name = "genre"
    flags.index.name = "line"
    long = flags.stack()
    long = long[long == 1]  # (line, genre) of every set flag, genres in u.genre order
    genres = long.reset_index("genre").groupby(level="line", sort=False)["genre"].agg(list)
    title, year = split_title_year(fields[1])
    # a title without "(year)" still has a release date "01-Jan-1995"; use its year when there is one
    release_year = pd.to_numeric(fields[2].str.strip().str[-4:], errors="coerce").astype("Int16")
    return pd.DataFrame(
        {
            "raw_item": ids,
            "title": title,
            "year": year.fillna(release_year),
            "genres": [genres.get(line, []) for line in fields.index],
            "directors": [[] for _ in fields.index],
            "writers": [[] for _ in fields.index],
            "actors": [[] for _ in fields.index],
            "synopsis": pd.Series(None, index=fields.index, dtype=object),
        }
    ).reset_index(drop=True)


DATASETS.register("ml-100k")(
    DatasetSource(
        name="ml-100k",
        needs=(
            (
                RawFile(
                    "u.data",
                    "ml-100k/u.data",
                    "sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                    Remote(ML100K_ZIP.url, ML100K_ZIP.checksum, "ml-100k/u.data"),
                ),
            ),
            (
                RawFile(
                    "u.item",
                    "ml-100k/u.item",
                    "sha256:553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
                    Remote(ML100K_ZIP.url, ML100K_ZIP.checksum, "ml-100k/u.item"),
                ),
            ),
            (
                RawFile(
                    "u.genre",
                    "ml-100k/u.genre",
                    "sha256:9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
                    Remote(ML100K_ZIP.url, ML100K_ZIP.checksum, "ml-100k/u.genre"),
                ),
            ),
        ),
        parser=parse_ml100k,
        default_rating_threshold=None,
    )
)
