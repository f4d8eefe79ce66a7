"""LightGCN's (and NGCF's) preprocessed splits: Gowalla, Yelp2018 and Amazon-Book.

Each dataset ships `train.txt` and `test.txt` with one line per user, `user item item ...` separated by
spaces, in LightGCN's 0-based remap ids; a line may hold a user and no item (Amazon-Book's test.txt has
four, written with a trailing space). `user_list.txt`/`item_list.txt` map the remap ids back to the
original ids; they are not read: the split files already give the id space, and prepare renumbers in
sorted raw-id order, so the remap ids of every user and item with an interaction stay what they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from specrec.data.sources.base import (
    DATASETS,
    DatasetSource,
    RawFile,
    RawTables,
    Remote,
    items_without_metadata,
)
from specrec.data.sources.readers import raw_path, read_text, reject_lines

LIGHTGCN_URL = "https://raw.githubusercontent.com/kuandeng/LightGCN/master/Data/{dataset}/{name}"
PARTS = ("train", "test")
ID_PATTERN = r"^[0-9]{1,18}$"  # a non-negative int64 that cannot overflow


def parse_lightgcn(raw_dir: Path) -> RawTables:
    """train.txt then test.txt as (user, item, rating 1, part) pairs in file order."""
    frames = [read_adjacency_lists(raw_path(raw_dir, f"{part}.txt"), part) for part in PARTS]
    ratings = pd.concat(frames, ignore_index=True)
    return RawTables(ratings=ratings, items=items_without_metadata(ratings["item"]))


def read_adjacency_lists(path: Path, part: str) -> pd.DataFrame:
    """One `user item item ...` line per user -> user, item, rating (1.0), part; vectorised with pyarrow.

    Blank lines are skipped. A line with a token that is not a non-negative integer, or one that repeats
    an earlier line's user, is a bad line: it raises naming the file and the 1-based line, or under
    bad_rows "warn" the whole line is skipped and counted.
    """
    lines = read_text(path, "utf-8").split("\n")
    trimmed = pc.utf8_trim_whitespace(pa.array(lines, type=pa.string()))  # also drops CR of CRLF ends
    filled = pc.not_equal(trimmed, "")
    line_no = np.flatnonzero(filled.to_numpy(zero_copy_only=False)) + 1
    tokens = pc.utf8_split_whitespace(trimmed.filter(filled))
    flat = tokens.flatten()
    parent = pc.list_parent_indices(tokens).to_numpy()
    first = np.ones(len(parent), dtype=bool)  # a line's first token, its user (no kept line is empty)
    first[1:] = parent[1:] != parent[:-1]
    valid = pc.match_substring_regex(flat, ID_PATTERN).to_numpy(zero_copy_only=False)
    bad_line = np.zeros(len(line_no), dtype=bool)
    if not valid.all():
        bad = int(np.argmin(valid))
        bad_line[parent[~valid]] = True
        number = int(line_no[parent[bad]])
        reason = f"{'user' if first[bad] else 'item'} {flat[bad].as_py()!r} is not a non-negative integer id"
        reject_lines(path, line_no[bad_line], lines[number - 1], reason)
    values = np.zeros(len(flat), dtype=np.int64)
    values[valid] = pc.cast(flat.filter(pa.array(valid)), pa.int64()).to_numpy()
    users = values[first]  # one per kept line, in line order
    repeated = np.zeros(len(line_no), dtype=bool)
    repeated[~bad_line] = pd.Series(users[~bad_line]).duplicated().to_numpy()
    if repeated.any():
        k = int(np.argmax(repeated))
        earlier = int(line_no[np.flatnonzero((users == users[k]) & ~bad_line)[0]])
        reason = f"duplicate user {users[k]} (one line per user; it already has line {earlier})"
        reject_lines(path, line_no[repeated], lines[int(line_no[k]) - 1], reason)
    item = ~first & ~(bad_line | repeated)[parent]
    return pd.DataFrame(
        {
            "user": users[parent[item]],
            "item": values[item],
            "rating": np.ones(int(item.sum()), dtype=np.float64),
            "part": part,
        }
    )


def _split_file(dataset: str, name: str, mirror_sha256: str | None, remote_sha256: str | None) -> RawFile:
    """One LightGCN file: content checksum of the mirror's copy, checksum of the canonical download."""
    remote = Remote(LIGHTGCN_URL.format(dataset=dataset, name=name), remote_sha256)
    return RawFile(name, f"{dataset}/{name}", mirror_sha256, remote)


def _register(
    dataset: str, train: tuple[str | None, str | None], test: tuple[str | None, str | None]
) -> None:
    DATASETS.register(dataset)(
        DatasetSource(
            name=dataset,
            needs=((_split_file(dataset, "train.txt", *train),), (_split_file(dataset, "test.txt", *test),)),
            parser=parse_lightgcn,
            default_rating_threshold=None,  # implicit feedback: every listed pair is an interaction
        )
    )


def _both(sha256: str) -> tuple[str, str]:
    """The mirror's copy is byte-identical to the official file: one checksum for both."""
    return f"sha256:{sha256}", f"sha256:{sha256}"


# Gowalla: all files byte-identical to kuandeng/LightGCN (git blob ids checked; see the mirror's SOURCE.md).
_register(
    "gowalla",
    train=_both("7244696fdeb23911319cf7b689f2e15a3c4c92549c873a5677b44e3f13cc3e62"),
    test=_both("099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3"),
)

# Yelp2018: test.txt is byte-identical to kuandeng/LightGCN. The mirror's train.txt was rebuilt with the
# same (user, item) pairs but items sorted per line, so its bytes differ from the official file and the
# download gets no checksum here (the official file is git blob cda12361055ba448ae4bd1070f6000c16dea8f22;
# a third-party Git-LFS copy records sha256 1e9568725a9e833d0ac3bae01c94cd95367f73b3bb6104fd26b5f65ea5054093,
# not checked against the official bytes).
_register(
    "yelp2018",
    train=("sha256:5588ebbcbf9ab10cdf7a70aa300f2ef781030daa2a94ef0685598ed051a398da", None),
    test=_both("9cd9b37926cd1447a06625ffa7914527573fb097c10cb0bbdb1d1b8ded3742fe"),
)

# Amazon-Book: test.txt is byte-identical to kuandeng/LightGCN; the mirror has no train.txt (materialize
# from the mirror fails naming it). Official train.txt: git blob 6ef55159c5f1fd7f6d86eb9ff290d0cc2854ac99,
# third-party Git-LFS sha256 529066026085919381acd4ce19f69e9eafa4af3fef1a10119ea5551cc2ef8530 (unchecked).
_register(
    "amazon-book",
    train=(None, None),
    test=_both("6250754994dd953b91b48dccdd77a73f318e0634b4757c2abfcc9d33a54ab0f5"),
)
