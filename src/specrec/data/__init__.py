"""Data stage: raw files (sources, download) -> prepared tables (prepare) -> train/valid/test (split)."""

from specrec.data.download import ChecksumError, DownloadError, fetch, materialize, resolve_mirror
from specrec.data.prepare import prepare
from specrec.data.sources import DATASETS, DatasetSource, RawFile, RawTables, Remote
from specrec.data.split import SPLITS, Split, load_split, random_edge_split, write_split

__all__ = [
    "DATASETS",
    "SPLITS",
    "ChecksumError",
    "DatasetSource",
    "DownloadError",
    "RawFile",
    "RawTables",
    "Remote",
    "Split",
    "fetch",
    "load_split",
    "materialize",
    "prepare",
    "random_edge_split",
    "resolve_mirror",
    "write_split",
]
