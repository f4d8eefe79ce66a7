"""Book-Crossing (Ziegler et al. 2005) ratings, as RippleNet ships them (`data/book/BX-Book-Ratings.csv`).

`"User-ID";"ISBN";"Book-Rating"` with that header, every field in double quotes, `;`-separated, latin-1.
Ratings are 1..10 (explicit) or 0 (implicit: the user interacted with the book); with the default
threshold None every rating, 0 included, is a positive interaction (paper 1, and RippleNet's threshold 0).
ISBNs are strings ("034545104X"), so raw item ids are str; the books have no metadata here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from specrec.data.sources.base import (
    DATASETS,
    DatasetSource,
    KGFiles,
    RawFile,
    RawTables,
    Remote,
    items_without_metadata,
)
from specrec.data.sources.readers import malformed, number_columns, raw_path, read_fields, reject_lines

BX_RATINGS_URL = "https://raw.githubusercontent.com/hwwang55/RippleNet/master/data/book/BX-Book-Ratings.csv"
BX_HEADER = ["User-ID", "ISBN", "Book-Rating"]
BX_RATINGS = (0, 10)

# RippleNet's rehashed Satori KG of the books (paper 1's KG): integer ids for head, relation and tail;
# the item map gives ISBN -> entity id. No published checksum: recorded on first download (TOFU).
RIPPLENET_BOOK = "https://raw.githubusercontent.com/hwwang55/RippleNet/master/data/book"
BX_KG = KGFiles(
    triples=RawFile(
        "kg_rehashed.txt",
        "book-crossing/kg_rehashed.txt",
        None,
        Remote(f"{RIPPLENET_BOOK}/kg_rehashed.txt", None),
    ),
    item_map=RawFile(
        "item_index2entity_id_rehashed.txt",
        "book-crossing/item_index2entity_id_rehashed.txt",
        None,
        Remote(f"{RIPPLENET_BOOK}/item_index2entity_id_rehashed.txt", None),
    ),
)


def parse_book_crossing(raw_dir: Path) -> RawTables:
    """BX-Book-Ratings.csv -> (user int64, item str ISBN, rating) in file order; items without metadata.

    Lines are split on ";" and each field must be wrapped in double quotes, which are removed (what
    RippleNet's preprocess.py does). A wrong field count, an unquoted field, a non-integer user id or
    rating, an empty ISBN or a rating outside 0..10 is a bad line (error, or skipped and counted).
    """
    path = raw_path(raw_dir, "BX-Book-Ratings.csv")
    fields = read_fields(path, ";", 3, "latin-1")
    if fields.empty:
        raise ValueError(f"{path} holds no lines; expected the header {';'.join(BX_HEADER)}")
    header_line = int(fields.index[0])
    if fields.loc[header_line].str.strip().tolist() != [f'"{name}"' for name in BX_HEADER]:
        shown = ";".join(fields.loc[header_line])
        raise malformed(path, header_line, shown, f"expected the header {';'.join(BX_HEADER)}")
    fields = fields.drop(index=header_line)
    fields = _unquote(fields, path)
    numbers = number_columns(fields, path, {0: "User-ID", 2: "Book-Rating"})
    fields = fields.loc[numbers.index]
    isbn = fields[1]
    bad = (isbn.str.strip() == "") | ~numbers["Book-Rating"].between(*BX_RATINGS) | (numbers["User-ID"] < 0)
    if bad.any():
        line_no = int(bad.idxmax())
        reason = "empty ISBN, negative User-ID or Book-Rating outside 0..10"
        reject_lines(path, bad.index[bad.to_numpy()], ";".join(fields.loc[line_no]), reason)
        keep = ~bad
        numbers, isbn = numbers[keep], isbn[keep]
    ratings = pd.DataFrame(
        {
            "user": numbers["User-ID"].to_numpy(dtype=np.int64),
            "item": isbn.to_numpy(dtype=object),
            "rating": numbers["Book-Rating"].to_numpy(dtype=np.float32),
        }
    )
    if ratings.empty:
        raise ValueError(f"{path} holds no valid rating lines")
    return RawTables(ratings=ratings, items=items_without_metadata(ratings["item"]))


def _unquote(fields: pd.DataFrame, path: Path) -> pd.DataFrame:
    """'"034545104X"' -> '034545104X' in every column; a field not wrapped in quotes is a bad line."""
    stripped = fields.apply(lambda column: column.str.strip())
    quoted = stripped.apply(lambda c: c.str.startswith('"') & c.str.endswith('"') & (c.str.len() >= 2))
    bad = ~quoted.all(axis=1)
    if bad.any():
        line_no = int(bad.idxmax())
        shown = ";".join(fields.loc[line_no])
        reject_lines(path, bad.index[bad.to_numpy()], shown, "every field must be in double quotes")
        stripped = stripped[~bad]
    inner = stripped.apply(lambda column: column.str.slice(1, -1))
    inner.attrs["sep"] = ";"
    return inner


DATASETS.register("book-crossing")(
    DatasetSource(
        name="book-crossing",
        needs=(
            (
                RawFile(
                    "BX-Book-Ratings.csv",
                    "book-crossing/BX-Book-Ratings.csv",  # not in the offline mirror
                    None,
                    # no published checksum: the first download is recorded in the checksum lock file
                    Remote(BX_RATINGS_URL, None),
                ),
            ),
        ),
        parser=parse_book_crossing,
        default_rating_threshold=None,  # every rating, implicit 0 included, is positive (paper 1)
        kg=BX_KG,
    )
)
