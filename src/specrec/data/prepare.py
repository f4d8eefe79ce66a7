"""Turn a folder of raw files into the three tables every later stage reads.

interactions.parquet (user, item, rating[, timestamp][, part]), users.parquet and items.parquet, with
users and items renumbered 0..n-1 in sorted order of their raw ids. Renumbering happens after the rating
threshold and the optional k-core filter, so the id space holds exactly the users and items that have a
kept interaction: no all-zero rows or columns in the interaction matrix, which would distort its spectrum.
`part` ("train"/"test") is kept for datasets that ship their own split (LightGCN's, DirectSpec's).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from specrec import io
from specrec.data.sources import ITEM_COLUMNS, LIST_COLUMNS, DatasetSource, get_source
from specrec.data.sources.readers import bad_rows_policy
from specrec.data.split import part_stats

STRING_LIST = pa.list_(pa.string())


def prepare(
    dataset: str | DatasetSource,
    raw_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    rating_threshold: float | None = None,
    kcore: int = 0,
    bad_rows: str = "error",
) -> dict:
    """Parse raw_dir, deduplicate, apply the threshold, renumber, write the tables; return a summary.

    rating_threshold None means the dataset's default_rating_threshold (None for the MovieLens sets:
    every rating is a positive interaction). Duplicate (user, item) pairs keep the last rating in file
    order, i.e. the latest one the raw data lists. kcore > 0 keeps the largest subgraph in which every user
    and every item has at least kcore interactions. bad_rows is what the readers do with a malformed raw
    line: "error" (stop, naming file and line) or "warn" (skip it, count it in `bad_rows_skipped`, log
    one warning per file).
    """
    source = get_source(dataset)
    threshold = source.default_rating_threshold if rating_threshold is None else rating_threshold
    with bad_rows_policy(bad_rows) as bad:
        tables = source.parser(Path(raw_dir))
    ratings, duplicates = _deduplicate(tables.ratings)
    kept = ratings if threshold is None else ratings[ratings["rating"] >= threshold]
    if kept.empty:
        raise ValueError(f"{source.name}: no interaction has rating >= {threshold}")
    before_kcore = len(kept)
    kept = kept[kcore_mask(kept["user"].to_numpy(), kept["item"].to_numpy(), kcore)] if kcore > 0 else kept
    if kept.empty:
        raise ValueError(
            f"{source.name}: the {kcore}-core is empty (every user or item has fewer interactions)"
        )
    raw_users, user = np.unique(kept["user"].to_numpy(), return_inverse=True)
    raw_items, item = np.unique(kept["item"].to_numpy(), return_inverse=True)
    interactions = _interactions(kept, user, item)
    out_dir = Path(out_dir)
    io.write_parquet(out_dir / "interactions.parquet", interactions)
    io.write_parquet(out_dir / "users.parquet", _id_map("user", raw_users))
    stats = dataset_stats(
        interactions, len(raw_users), len(raw_items), _part_sizes(tables.ratings), skipped_rows=bad.skipped
    )
    io.write_csv(out_dir / "stats.csv", stats)
    _write_items(out_dir / "items.parquet", _items(tables.items, raw_items))
    return {
        "dataset": source.name,
        "n_users": len(raw_users),
        "n_items": len(raw_items),
        "n_interactions": len(interactions),
        "duplicates": duplicates,
        "bad_rows_skipped": bad.skipped,
        "dropped_below_threshold": len(ratings) - before_kcore,
        "dropped_by_kcore": before_kcore - len(kept),
        "rating_threshold": threshold,
        "kcore": kcore,
        "has_timestamp": "timestamp" in interactions.columns,
        "provided_split": "part" in interactions.columns,
    }


def _part_sizes(ratings: pd.DataFrame) -> dict[str, int]:
    """Rows the raw files hold, in all and per provided part, before deduplication and filtering."""
    sizes = {"all": len(ratings)}
    if "part" in ratings.columns:
        sizes |= ratings.groupby("part").size().to_dict()
    return sizes


def dataset_stats(
    interactions: pd.DataFrame,
    n_users: int,
    n_items: int,
    raw_rows: dict[str, int] | None = None,
    skipped_rows: int = 0,
) -> pd.DataFrame:
    """Rows `all` and, for a provided split, one per part: distinct users, items, interactions, density.

    Same columns as a split's stats.csv, so the datasets table stacks both (the seed column tells them
    apart), plus `raw_rows`: lines of the raw files before deduplication and filtering, which is what
    published dataset tables often count (CiteULike's train.csv has 166,025 lines, 22 repeating a pair),
    and `skipped_rows`: malformed raw lines skipped under `bad_rows: warn` (the datasets table shows it).
    """
    parts = {"all": interactions}
    if "part" in interactions.columns:
        parts |= dict(tuple(interactions.groupby("part", sort=True)))
    stats = part_stats(parts, n_users, n_items)
    stats["raw_rows"] = stats["split"].map(raw_rows or {})
    stats["skipped_rows"] = stats["split"].map({"all": skipped_rows})
    return stats


def kcore_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k-core: drop users and items with < k interactions, repeatedly, until none is left.

    Each round is two bincounts over the surviving edges; rounds stop when nothing changes.
    """
    _, user = np.unique(users, return_inverse=True)
    _, item = np.unique(items, return_inverse=True)
    keep = np.ones(len(user), dtype=bool)
    while True:
        user_degree = np.bincount(user[keep], minlength=user.max() + 1)
        item_degree = np.bincount(item[keep], minlength=item.max() + 1)
        still = keep & (user_degree[user] >= k) & (item_degree[item] >= k)
        if still.sum() == keep.sum():
            return keep
        keep = still


def _deduplicate(ratings: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep the last occurrence of each (user, item) (per part of a provided split); count the rest.

    A provided split keeps a pair that its files list in both parts (CiteULike has 11): the published
    train and test sizes count them, and the papers' evaluation treats them that way.
    """
    key = ["user", "item", "part"] if "part" in ratings.columns else ["user", "item"]
    repeated = ratings.duplicated(key, keep="last")
    return ratings[~repeated], int(repeated.sum())


def _interactions(kept: pd.DataFrame, user: np.ndarray, item: np.ndarray) -> pd.DataFrame:
    """Compact dtypes, sorted by (user, item) so the output does not depend on raw line order."""
    columns = {
        "user": user.astype(np.int32),
        "item": item.astype(np.int32),
        "rating": kept["rating"].to_numpy(dtype=np.float32),
    }
    if "timestamp" in kept.columns:
        columns["timestamp"] = kept["timestamp"].to_numpy(dtype=np.int64)
    if "part" in kept.columns:
        columns["part"] = kept["part"].astype(str).to_numpy()
    frame = pd.DataFrame(columns)
    order = np.lexsort((frame["item"].to_numpy(), frame["user"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def _id_map(kind: str, raw_ids: np.ndarray) -> pd.DataFrame:
    if np.issubdtype(raw_ids.dtype, np.integer):  # int32 from the compact readers: one schema for all
        raw_ids = raw_ids.astype(np.int64)
    return pd.DataFrame({kind: np.arange(len(raw_ids), dtype=np.int32), f"raw_{kind}": raw_ids})


def _items(metadata: pd.DataFrame, raw_items: np.ndarray) -> pd.DataFrame:
    """One row per kept item in id order; items the metadata lacks get a null title and empty lists."""
    frame = _id_map("item", raw_items).merge(metadata[ITEM_COLUMNS], on="raw_item", how="left", sort=False)
    frame["title"] = frame["title"].astype("str").where(frame["title"].notna(), None)
    frame["year"] = frame["year"].astype("Int16")
    for column in LIST_COLUMNS:
        lists = [value if isinstance(value, list) else [] for value in frame[column]]
        frame[column] = pd.Series(lists, dtype=object, index=frame.index)
    frame["synopsis"] = frame["synopsis"].astype("str").where(frame["synopsis"].notna(), None)
    return frame[["item", *ITEM_COLUMNS]]


def _write_items(path: Path, frame: pd.DataFrame) -> None:
    """Write items with list columns typed list<string> explicitly.

    Inferred, a column of only empty lists (ML-100K's credits) would become list<null>: a different
    schema for the same column across datasets. (pandas' ArrowDtype would fix the type but stores pandas
    metadata that pandas cannot read back, hence pyarrow directly, still through io.atomic_path.)
    """
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    for column in LIST_COLUMNS:
        schema = schema.set(schema.get_field_index(column), pa.field(column, STRING_LIST))
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    with io.atomic_path(path) as tmp:
        pq.write_table(table, tmp)
