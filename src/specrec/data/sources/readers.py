"""Vectorised readers shared by the parsers, with errors that name the file and the 1-based line.

The readers use the pandas C engine or whole-column string operations because the rating files have
millions of lines. When a fast read fails, a slower pass over the same file finds the first bad line.

Bad lines follow the policy set by `bad_rows_policy` (prepare's `bad_rows`): "error" (the default, also
outside any policy block) raises naming the file and the first bad line; "warn" skips every bad line,
counts it, and logs one warning per file with the count and the first bad line when the block ends.
Nothing is ever dropped silently. Parsers that find bad lines themselves report them with `reject_lines`.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from specrec.data.sources.base import MISSING

log = logging.getLogger("specrec.data")

BAD_ROWS_POLICIES = ("error", "warn")


def malformed(path: Path, line_no: int, line: str, reason: str) -> ValueError:
    shown = line if len(line) <= 200 else line[:200] + "..."
    return ValueError(f"malformed line in {path}, line {line_no}: {reason}: {shown!r}")


# ------------------------------------------------------------------------------------ bad-rows policy


@dataclass
class BadRows:
    """The active policy and, under "warn", what was skipped: per file the count and the first bad line."""

    policy: str = "error"
    files: dict[str, dict] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return sum(entry["count"] for entry in self.files.values())

    def add(self, path: Path, count: int, line_no: int, line: str, reason: str) -> None:
        entry = self.files.setdefault(
            str(path), {"count": 0, "first": line_no, "reason": reason, "line": line}
        )
        entry["count"] += count
        if line_no < entry["first"]:
            entry.update(first=line_no, reason=reason, line=line)

    def log_warnings(self) -> None:
        for path, entry in self.files.items():
            shown = entry["line"] if len(entry["line"]) <= 200 else entry["line"][:200] + "..."
            log.warning(
                "skipped %d malformed line(s) in %s (bad_rows=warn); first: line %d: %s: %r",
                entry["count"],
                path,
                entry["first"],
                entry["reason"],
                shown,
            )


_BAD_ROWS: ContextVar[BadRows | None] = ContextVar("specrec_bad_rows", default=None)


@contextmanager
def bad_rows_policy(policy: str = "error") -> Iterator[BadRows]:
    """Readers called inside this block apply `policy` ("error" or "warn") to bad lines.

    Yields the tally (its `skipped` is the number of lines skipped); on leaving the block, one warning is
    logged per file that had skipped lines. A contextvar, so parser signatures stay `parser(raw_dir)`.
    """
    if policy not in BAD_ROWS_POLICIES:
        raise ValueError(f"bad_rows must be one of {', '.join(BAD_ROWS_POLICIES)}, got {policy!r}")
    tally = BadRows(policy)
    token = _BAD_ROWS.set(tally)
    try:
        yield tally
    finally:
        _BAD_ROWS.reset(token)
        tally.log_warnings()


def reject_lines(path: Path, line_nos: Sequence[int] | np.ndarray, line: str, reason: str) -> None:
    """Report bad lines (1-based numbers); `line` and `reason` describe the first (smallest) of them.

    Under "error" this raises naming the first; under "warn" it counts them, and the caller drops them.
    """
    line_nos = np.asarray(line_nos)
    if len(line_nos) == 0:
        return
    first = int(line_nos.min())
    tally = _BAD_ROWS.get()
    if tally is None or tally.policy == "error":
        raise malformed(path, first, line, reason)
    tally.add(path, len(line_nos), first, line, reason)


# -------------------------------------------------------------------------------------------- readers


def read_text(path: Path, encoding: str) -> str:
    """Whole file as text; a line that does not decode is a bad line like any other.

    Under "warn" such a line becomes blank (so the line numbers of the others stay right).
    """
    data = Path(path).read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    decoded, bad = [], []
    for k, raw in enumerate(lines):
        try:
            decoded.append(raw.decode(encoding))
        except UnicodeDecodeError:
            decoded.append("")
            bad.append(k + 1)
    if not bad:
        raise ValueError(f"{path} is not valid {encoding}")
    reject_lines(path, bad, lines[bad[0] - 1].decode(encoding, errors="replace"), f"not valid {encoding}")
    return "\n".join(decoded)


def read_fields(path: Path, sep: str, n_fields: int, encoding: str) -> pd.DataFrame:
    """Split every non-blank line on `sep` into exactly `n_fields` string columns (0..n-1).

    The index is the 1-based line number, so later checks can report where a bad value sits. Lines are
    split on "\\n" only: str.splitlines would also break at latin-1's \\x85 and similar characters.
    """
    return _fields_from_text(path, read_text(path, encoding), sep, n_fields, 1)


def _fields_from_text(path: Path, text: str, sep: str, n_fields: int, first_line: int) -> pd.DataFrame:
    """read_fields on text whose first line is line `first_line` of `path`."""
    lines = pd.Series(text.split("\n"), dtype=object)
    lines.index = np.arange(first_line, first_line + len(lines))
    lines = lines.str.removesuffix("\r")  # MeLU's files have CRLF line ends
    lines = lines[lines.str.strip() != ""]
    parts = lines.str.split(sep, regex=False)
    counts = parts.str.len()
    wrong = counts != n_fields
    if wrong.any():
        line_no = int(wrong.idxmax())
        reason = f"expected {n_fields} fields separated by {sep!r}, found {counts[line_no]}"
        reject_lines(path, wrong.index[wrong.to_numpy()], lines[line_no], reason)
        parts = parts[~wrong]
    frame = pd.DataFrame(parts.tolist(), index=parts.index, columns=range(n_fields))
    frame.attrs["sep"] = sep  # lets to_numbers show a bad line as it was written
    return frame


def number_columns(
    fields: pd.DataFrame, path: Path, names: Mapping[int, str], floats: Collection[int] = ()
) -> pd.DataFrame:
    """Columns `names` (field index -> name) of read_fields output as int64 (float64 for `floats`).

    A value that is not a number (not an integer, outside `floats`) is a bad line: the first one raises
    with its line; under "warn" every line with a bad value is left out of the result. The result keeps
    the line-number index, so take other columns as `fields.loc[result.index]`; convert every numeric
    column of a file in one call, so that a line bad in one column goes from all of them.
    """
    values, reasons = {}, pd.Series(None, index=fields.index, dtype=object)
    for column, name in names.items():
        text = fields[column].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = numbers.isna()
        integer = column not in floats
        if integer:
            bad |= numbers.fillna(0) % 1 != 0
        if bad.any():
            kind = "an integer" if integer else "a number"
            new = bad & reasons.isna()
            reasons[new] = [f"{name} {value!r} is not {kind}" for value in text[new]]
        values[name] = numbers
    bad_lines = reasons.index[reasons.notna().to_numpy()]
    if len(bad_lines):
        line_no = int(bad_lines.min())
        shown = fields.attrs.get("sep", " ").join(fields.loc[line_no])
        reject_lines(path, bad_lines, shown, reasons[line_no])
    frame = pd.DataFrame(values)
    if len(bad_lines):
        frame = frame[reasons.isna().to_numpy()]
    dtypes = {name: "float64" if column in floats else "int64" for column, name in names.items()}
    return frame.astype(dtypes)


def to_numbers(fields: pd.DataFrame, path: Path, column: int, name: str, integer: bool = True) -> pd.Series:
    """Column `column` of read_fields output as numbers; the first non-number raises with its line.

    Under "warn" the result leaves bad lines out (see number_columns: align other columns by its index).
    """
    return number_columns(fields, path, {column: name}, floats=() if integer else (column,))[name]


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
        return _read_numeric_slowly(path, sep, names, float_columns)
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


def _read_numeric_slowly(
    path: Path, sep: str, names: Sequence[str], float_columns: Sequence[str]
) -> pd.DataFrame:
    """The line-aware pass: raises at the first bad line, or under "warn" returns the good lines."""
    fields = read_fields(path, sep, len(names), "latin-1")
    if fields.empty:
        raise ValueError(f"{path} holds no data lines")
    floats = [k for k, name in enumerate(names) if name in float_columns]
    before = len(fields)
    frame = number_columns(fields, path, dict(enumerate(names)), floats=floats)
    if len(frame) == before:  # nothing bad found, so the fast reader failed for another reason
        raise ValueError(f"{path} could not be parsed as {len(names)} numeric fields separated by {sep!r}")
    if frame.empty:
        raise ValueError(f"{path} holds no valid data lines")
    return frame.reset_index(drop=True)


def read_numeric_csv(
    path: Path,
    names: Sequence[str],
    dtypes: Mapping[str, str | np.dtype | type],
    header: Sequence[str] | None = None,
    sep: str = ",",
    block_bytes: int = 32 << 20,
) -> pd.DataFrame:
    """An all-numeric delimited file of any size (ML-20M's 20 M ratings), in blocks, into compact dtypes.

    The file is cut at line ends into blocks of about `block_bytes`; each is read by the pandas C engine
    and cast to `dtypes` (e.g. int32 ids, float32 ratings), so the peak memory is the compact result plus
    one block. `header` (the expected first line's fields) is checked and skipped. A block that the fast
    reader refuses goes through the line-aware pass, which names the first bad line (file and 1-based
    number) or, under "warn", keeps the block's good lines.
    """
    path = Path(path)
    pieces: list[pd.DataFrame] = []
    with open(path, "rb") as handle:
        line_no = 1  # the number of the next block's first line
        if header is not None:
            first = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
            if first.split(sep) != list(header):
                raise malformed(path, 1, first, f"expected the header {sep.join(header)!r}")
            line_no = 2
        rest = b""
        while True:
            data = handle.read(block_bytes)
            block = rest + data
            if data:
                cut = block.rfind(b"\n") + 1
                if cut == 0:  # one line longer than a block: read on
                    rest = block
                    continue
                block, rest = block[:cut], block[cut:]
            if block.strip():
                pieces.append(_numeric_block(block, path, line_no, sep, names, dtypes))
            if not data:
                break
            line_no += block.count(b"\n")
    if not pieces:
        raise ValueError(f"{path} holds no data lines")
    frame = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
    del pieces
    if frame.empty:
        raise ValueError(f"{path} holds no valid data lines")
    return frame


def _numeric_block(
    block: bytes,
    path: Path,
    first_line: int,
    sep: str,
    names: Sequence[str],
    dtypes: Mapping[str, str | np.dtype | type],
) -> pd.DataFrame:
    floats = {name for name in names if np.issubdtype(np.dtype(dtypes[name]), np.floating)}
    try:
        frame = pd.read_csv(
            io.BytesIO(block), sep=sep, header=None, engine="c", quoting=csv.QUOTE_NONE, encoding="utf-8"
        )
        ok = _numeric_frame_ok(frame, len(names), list(range(len(names))), names, tuple(floats))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        ok = False
    if ok:
        frame.columns = list(names)
    else:
        fields = _fields_from_text(path, block.decode("utf-8", errors="replace"), sep, len(names), first_line)
        floats_at = [k for k, name in enumerate(names) if name in floats]
        frame = number_columns(fields, path, dict(enumerate(names)), floats=floats_at).reset_index(drop=True)
    return _compact(frame, path, dtypes)


def _compact(frame: pd.DataFrame, path: Path, dtypes: Mapping[str, str | np.dtype | type]) -> pd.DataFrame:
    """Cast to the compact dtypes, refusing integers that do not fit rather than wrapping them."""
    for name, dtype in dtypes.items():
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.integer) and len(frame):
            info = np.iinfo(dtype)
            low, high = frame[name].min(), frame[name].max()
            if low < info.min or high > info.max:
                raise ValueError(f"{path}: {name} values {low}..{high} do not fit in {dtype}")
    return frame.astype(dict(dtypes))


def read_csv_records(
    path: Path, n_fields: int, encoding: str, header: Sequence[str] | None = None, sep: str = ","
) -> pd.DataFrame:
    """A quoted CSV (MovieLens' movies.csv: titles with commas in quotes) as read_fields output.

    String columns 0..n-1 indexed by the 1-based line number. Each line is one record (MovieLens' never
    span lines), so an unclosed quote spoils its own line only. `header` is checked (an unexpected header
    raises) and dropped. A line with the wrong number of fields or broken quoting is a bad line (error,
    or skipped and counted under "warn").
    """
    lines = read_text(path, encoding).split("\n")
    rows, numbers, bad = [], [], []
    first_bad: tuple[int, str, str] | None = None
    header_pending = header is not None
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            record = next(csv.reader([line], delimiter=sep, strict=True))
            reason = f"expected {n_fields} fields separated by {sep!r}, found {len(record)}"
        except csv.Error as err:
            record, reason = None, f"not valid CSV ({err})"
        if header_pending:
            header_pending = False
            if record is None or [value.strip() for value in record] != list(header):
                raise malformed(path, number, line, f"expected the header {sep.join(header)!r}")
            continue
        if record is None or len(record) != n_fields:
            bad.append(number)
            first_bad = first_bad or (number, reason, line)
            continue
        rows.append(record)
        numbers.append(number)
    if first_bad is not None:
        reject_lines(path, bad, first_bad[2], first_bad[1])
    frame = pd.DataFrame(rows, index=pd.Index(numbers, dtype="int64"), columns=range(n_fields), dtype=object)
    frame.attrs["sep"] = sep
    return frame


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
