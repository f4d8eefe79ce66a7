"""Do two results/ folders hold the same numbers? Every run file, table and index of one is compared with the
other's, apart from what a rerun changes by itself: provenance, timings and file paths.

    python benchmarks/compare_results.py OLD/results NEW/results [--rtol 0]

JSON, CSV, Parquet and NPZ files are compared value by value (numbers within `--rtol`, 0 = bit for bit);
Markdown and LaTeX tables line by line with their timing columns dropped. Prints one line per differing file
and a summary; exits 1 when any file differs or is missing on one side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SUFFIXES = {".json", ".csv", ".parquet", ".npz", ".md", ".tex"}
SKIPPED_FOLDERS = {"logs", "checkpoints", "figures", ".snakemake"}
# what differs between two runs of the same numbers: wall-clock times, machine, library versions, paths
VOLATILE = ("seconds", "provenance", "elapsed", "wall", "created", "hostname", "device_name", "Train (s)")


def volatile(key: str) -> bool:
    return any(word in key for word in VOLATILE)


def same(a, b, rtol: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = {k for k in a.keys() | b.keys() if not volatile(str(k))}
        return all(k in a and k in b and same(a[k], b[k], rtol) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=rtol, abs_tol=0.0) if rtol else a == b
    return a == b


def frames_equal(a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> bool:
    keep = [c for c in a.columns if not volatile(str(c))]
    if keep != [c for c in b.columns if not volatile(str(c))] or len(a) != len(b):
        return False
    a, b = a[keep].reset_index(drop=True), b[keep].reset_index(drop=True)
    for column in keep:
        x, y = a[column], b[column]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            if not np.allclose(x.to_numpy(float), y.to_numpy(float), rtol=rtol, atol=0.0, equal_nan=True):
                return False
        elif not x.astype(str).equals(y.astype(str)):
            return False
    return True


def text_table(path: Path) -> list[str]:
    """A Markdown or LaTeX table without its timing columns (`Train (s)`, `Seconds to 95%`, ...)."""
    lines = path.read_text().splitlines()
    separator = "|" if path.suffix == ".md" else "&"
    header = next((line for line in lines if separator in line), "")
    cells = [cell.strip() for cell in header.split(separator)]
    drop = {i for i, cell in enumerate(cells) if "(s)" in cell or "Seconds" in cell or "Train s" in cell}
    return [separator.join(c for i, c in enumerate(line.split(separator)) if i not in drop) for line in lines]


def files_equal(old: Path, new: Path, rtol: float) -> bool:
    suffix = old.suffix
    if suffix == ".json":
        return same(json.loads(old.read_text()), json.loads(new.read_text()), rtol)
    if suffix == ".csv":
        return frames_equal(pd.read_csv(old), pd.read_csv(new), rtol)
    if suffix == ".parquet":
        return frames_equal(pd.read_parquet(old), pd.read_parquet(new), rtol)
    if suffix == ".npz":
        with np.load(old) as a, np.load(new) as b:
            if sorted(a.files) != sorted(b.files):
                return False
            return all(np.allclose(a[k], b[k], rtol=rtol, atol=0.0, equal_nan=True) for k in a.files)
    return text_table(old) == text_table(new)


def result_files(root: Path) -> set[Path]:
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.suffix in SUFFIXES and not SKIPPED_FOLDERS & set(path.relative_to(root).parts)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance of numbers (0: exact)")
    args = parser.parse_args(argv)
    old, new = result_files(args.old), result_files(args.new)
    differing = [
        path for path in sorted(old & new) if not files_equal(args.old / path, args.new / path, args.rtol)
    ]
    for path in sorted(old - new):
        print(f"only in {args.old}: {path}")
    for path in sorted(new - old):
        print(f"only in {args.new}: {path}")
    for path in differing:
        print(f"differs: {path}")
    print(f"{len(old & new)} files compared, {len(differing)} differ, {len(old ^ new)} on one side only")
    return 1 if differing or old ^ new else 0


if __name__ == "__main__":
    sys.exit(main())
