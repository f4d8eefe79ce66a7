"""DirectSpec's (Peng et al., "Balancing Embedding Spectrum for Recommendation") preprocessed splits.

`train.csv` and `test.csv`: a `user,item` header, then one 0-based `user,item` pair per line, CRLF line
ends (what DirectSpec's scripts read with pandas). Only CiteULike is registered: DirectSpec's Gowalla
split is LightGCN's (registered as `gowalla`), and its Yelp train.csv is not available.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from specrec.data.sources.base import (
    DATASETS,
    DatasetSource,
    RawFile,
    RawTables,
    Remote,
    items_without_metadata,
)
from specrec.data.sources.readers import malformed, number_columns, raw_path, read_fields, reject_lines

DIRECTSPEC_URL = "https://raw.githubusercontent.com/tanatosuu/directspec/main/Datasets/{dataset}/{name}"
HEADER = ["user", "item"]
PARTS = ("train", "test")


def parse_directspec(raw_dir: Path) -> RawTables:
    """train.csv then test.csv as (user, item, rating 1, part) pairs in file order."""
    frames = [read_pairs(raw_path(raw_dir, f"{part}.csv"), part) for part in PARTS]
    ratings = pd.concat(frames, ignore_index=True)
    return RawTables(ratings=ratings, items=items_without_metadata(ratings["item"]))


def read_pairs(path: Path, part: str) -> pd.DataFrame:
    """A `user,item` CSV with its header -> user, item, rating (1.0), part.

    A bad line (wrong number of fields, an id that is not a non-negative integer) raises naming the file
    and the 1-based line, or under bad_rows "warn" is skipped and counted. A missing header always raises.
    """
    fields = read_fields(path, ",", 2, "utf-8")  # also strips the CR of CRLF line ends
    if fields.empty:
        raise ValueError(f"{path} holds no lines; expected a {','.join(HEADER)} header")
    header_line = int(fields.index[0])
    if fields.loc[header_line].str.strip().tolist() != HEADER:
        raise malformed(path, header_line, ",".join(fields.loc[header_line]), f"expected the header {HEADER}")
    fields = fields.drop(index=header_line)
    ids = number_columns(fields, path, dict(enumerate(HEADER)))
    negative = (ids < 0).any(axis=1)
    if negative.any():
        line_no = int(negative.idxmax())
        name = "user" if ids.loc[line_no, "user"] < 0 else "item"
        reason = f"{name} id {ids.loc[line_no, name]} < 0"
        reject_lines(path, ids.index[negative.to_numpy()], ",".join(fields.loc[line_no]), reason)
        ids = ids[~negative]
    return pd.DataFrame({"user": ids["user"], "item": ids["item"], "rating": 1.0, "part": part}).reset_index(
        drop=True
    )


def _pair_file(dataset: str, name: str, sha256: str) -> RawFile:
    """A file whose mirror copy is byte-identical to the official one: one checksum for both."""
    checksum = f"sha256:{sha256}"
    return RawFile(
        name,
        f"{dataset}/{name}",
        checksum,
        Remote(DIRECTSPEC_URL.format(dataset=dataset, name=name), checksum),
    )


# CiteULike (CiteULike-a, Wang & Blei 2011): the mirror's copies are tanatosuu/directspec @ 21e0ebeb.
DATASETS.register("citeulike")(
    DatasetSource(
        name="citeulike",
        needs=(
            (
                _pair_file(
                    "citeulike",
                    "train.csv",
                    "668d1011a83674cab98232bccd8343bdeadaa0d72c8d7e3664380874f681d3b5",
                ),
            ),
            (
                _pair_file(
                    "citeulike",
                    "test.csv",
                    "b27b8daa397475492409e861a1e82ff01de6c10f74f3ff9f8fce0a812ce77671",
                ),
            ),
        ),
        parser=parse_directspec,
        default_rating_threshold=None,  # implicit feedback: every listed pair is an interaction
    )
)
