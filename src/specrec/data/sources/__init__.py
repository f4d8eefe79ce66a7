"""Dataset sources: one module per family of datasets, all registered in DATASETS."""

from specrec.data.sources import bookcrossing, directspec, lightgcn, movielens  # noqa: E402,F401,I001  (registration side effects)
from specrec.data.sources.base import (
    DATASETS,
    ITEM_COLUMNS,
    LIST_COLUMNS,
    MISSING,
    DatasetSource,
    RawFile,
    RawTables,
    Remote,
    get_source,
)

__all__ = [
    "DATASETS",
    "ITEM_COLUMNS",
    "LIST_COLUMNS",
    "MISSING",
    "DatasetSource",
    "RawFile",
    "RawTables",
    "Remote",
    "get_source",
]
