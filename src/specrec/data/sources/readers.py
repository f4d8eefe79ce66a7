"""Vectorised readers shared by the parsers, with errors that name the file and the 1-based line.

The readers use the pandas C engine or whole-column string operations because the rating files have
millions of lines. When a fast read fails, a slower pass over the same file finds the first bad line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from specrec.data.sources.base import MISSING


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
