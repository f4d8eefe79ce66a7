"""The dataset registry and what a source is: the raw files it needs and the parser that reads them.

A `DatasetSource` is the single place that knows a dataset: the files it needs (their canonical download,
their place in an offline mirror, their checksum) and the parser that reads them. Adding a dataset means
one module in this package with a registered `DatasetSource` and its parser, plus one import line in
`__init__.py`; download.py and prepare.py stay untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from specrec.registry import Registry

# `rated` (MPAA rating, e.g. "PG-13") comes last so that existing column positions stay as they were
ITEM_COLUMNS = ["raw_item", "title", "year", "genres", "directors", "writers", "actors", "synopsis", "rated"]
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

    ratings: user, item, rating[, timestamp][, part] in file order (file order decides which duplicate is
    "last"). `part` is "train" or "test" for datasets that ship their own split; implicit-feedback files
    without ratings give rating 1.
    items: ITEM_COLUMNS, one row per raw item id, lists as Python lists, missing synopsis and rated as None.
    """

    ratings: pd.DataFrame
    items: pd.DataFrame


@dataclass(frozen=True)
class KGFiles:
    """A published knowledge graph of a dataset's items (KGCN's and RippleNet's Microsoft Satori extracts).

    `triples`: `head<TAB>relation<TAB>tail` lines (kg.txt, kg_rehashed.txt); `item_map`:
    `raw_item<TAB>entity` lines (item_index2entity_id*.txt). Read by specrec.kg.load_satori_kg.
    """

    triples: RawFile
    item_map: RawFile


@dataclass(frozen=True)
class DatasetSource:
    """A dataset: the raw files it needs and the parser that reads them.

    `needs` holds one tuple per needed file with the acceptable alternatives in order of preference
    (ML-1M's ratings come either as the canonical ratings.dat or as the mirror's timestamp-less copy).
    `kg` names the files of a published item knowledge graph, if there is one. They are not among
    `needs`: the dataset downloads and prepares without them, and only a KG build fetches them, through
    `kg_download()`.
    """

    name: str
    needs: tuple[tuple[RawFile, ...], ...]
    parser: Callable[[Path], RawTables]
    default_rating_threshold: float | None = None
    kg: KGFiles | None = None

    def raw_files(self) -> list[RawFile]:
        return [raw for need in self.needs for raw in need]

    def kg_download(self) -> DatasetSource:
        """The KG files as a source of their own (named `<dataset>-kg`), for download.materialize.

        It is not registered (it is no dataset one can train on) and its parser refuses to run: the
        files are a graph, not ratings, and specrec.kg.load_satori_kg reads them.
        """
        if self.kg is None:
            raise ValueError(f"{self.name} has no published knowledge graph; build one from item metadata")
        return DatasetSource(
            name=f"{self.name}-kg",
            needs=((self.kg.triples,), (self.kg.item_map,)),
            parser=_kg_has_no_ratings,
        )


def _kg_has_no_ratings(raw_dir: Path) -> RawTables:
    raise TypeError(f"{raw_dir} holds knowledge-graph files: read them with specrec.kg.load_satori_kg")


DATASETS: Registry[DatasetSource] = Registry("dataset")


def get_source(dataset: str | DatasetSource) -> DatasetSource:
    """Accept a registered name or a DatasetSource (tests pass sources with their own checksums)."""
    return dataset if isinstance(dataset, DatasetSource) else DATASETS[dataset]


def items_without_metadata(items: pd.Series) -> pd.DataFrame:
    """ITEM_COLUMNS for datasets that only give item ids: one row per distinct id, nothing else known."""
    ids = np.unique(items.to_numpy())  # sorted, like the ids prepare assigns
    n = len(ids)
    return pd.DataFrame(
        {
            "raw_item": pd.Series(ids, dtype=object),
            "title": pd.Series([None] * n, dtype=object),
            "year": pd.Series([pd.NA] * n, dtype="Int16"),
            **{column: [[] for _ in range(n)] for column in LIST_COLUMNS},
            "synopsis": pd.Series([None] * n, dtype=object),
            "rated": pd.Series([None] * n, dtype=object),
        }
    )[ITEM_COLUMNS]
