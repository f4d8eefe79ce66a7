"""Wall time and peak memory of materialize + prepare on an ML-20M-sized ratings.csv.

Generates a synthetic ratings.csv in the real ml-20m format (`userId,movieId,rating,timestamp`, header,
sorted by user then movie, ratings 0.5..5.0 in halves written as "3.5"/"4.0"; 20,000,263 rows, 138,493
users, 26,744 rated movies of 27,278 in movies.csv, each user >= 20 ratings and no repeated pair) into a
temporary mirror, streamed out in chunks (about 530 MB). Then materialize (copy from the mirror) and
prepare (ml-20m: rating >= 4) each run in a child process, which reports its wall time and peak RSS.

    python benchmarks/prepare_ml20m.py                # the full size
    python benchmarks/prepare_ml20m.py --rows 1000000 # a quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS, USERS, MOVIES, RATED, MAX_MOVIE_ID = 20_000_263, 138_493, 27_278, 26_744, 131_262
MIN_PER_USER = 20
HALVES = np.arange(1, 11) / 2
# roughly ML-20M's rating histogram (0.5 .. 5.0)
RATING_P = np.array([1.2, 3.4, 1.4, 7.2, 4.4, 21.4, 10.5, 27.7, 7.7, 14.5])
RATING_P = RATING_P / RATING_P.sum()

CHILD = """
import json, resource, sys, time
from specrec.data.download import materialize
from specrec.data.prepare import prepare
step, root = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if step == "materialize":
    result = materialize("ml-20m", root + "/raw", root + "/mirror")["files"]
else:
    result = prepare("ml-20m", root + "/raw", root + "/out")
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
print(json.dumps({"wall_s": wall, "peak_rss": peak, "result": result}, default=str))
"""


def user_counts(rng: np.random.Generator, rows: int, users: int) -> np.ndarray:
    """Ratings per user: >= MIN_PER_USER, long-tailed, at most RATED, summing to exactly `rows`."""
    tail = rng.lognormal(mean=3.6, sigma=1.2, size=users)
    extra = rows - MIN_PER_USER * users
    counts = MIN_PER_USER + np.floor(tail / tail.sum() * extra).astype(np.int64)
    counts = np.minimum(counts, RATED)
    while (missing := rows - counts.sum()) > 0:  # hand out what rounding and the cap left over
        room = np.flatnonzero(counts < RATED)
        counts[rng.choice(room, size=min(missing, len(room)), replace=False)] += 1
    return counts


def write_ratings(path: Path, rows: int, users: int, seed: int = 0, users_per_chunk: int = 4000) -> None:
    """Stream the ratings out a few thousand users at a time; no (user, movie) pair repeats.

    A user's movies are an arithmetic progression modulo RATED with a stride coprime to it (RATED =
    2^3 * 3343: odd strides that are not multiples of 3343), so they are distinct without a set.
    """
    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(np.arange(1, MAX_MOVIE_ID + 1), size=RATED, replace=False))
    counts = user_counts(rng, rows, users)
    with open(path, "w", newline="") as handle:
        handle.write("userId,movieId,rating,timestamp\n")
        for first in range(0, users, users_per_chunk):
            chunk = counts[first : first + users_per_chunk]
            user = np.repeat(np.arange(first + 1, first + 1 + len(chunk), dtype=np.int32), chunk)
            k = np.arange(len(user)) - np.repeat(np.cumsum(chunk) - chunk, chunk)  # 0.. within a user
            start = np.repeat(rng.integers(0, RATED, len(chunk)), chunk)
            stride = 2 * rng.integers(0, RATED // 2, len(chunk)) + 1
            stride[stride % 3343 == 0] += 2
            movie = movie_ids[(start + k * np.repeat(stride, chunk)) % RATED]
            order = np.lexsort((movie, user))
            frame = pd.DataFrame(
                {
                    "userId": user[order],
                    "movieId": movie[order],
                    "rating": rng.choice(HALVES, size=len(user), p=RATING_P),
                    "timestamp": rng.integers(789_652_009, 1_427_784_002, len(user)),
                }
            )
            frame.to_csv(handle, header=False, index=False, float_format="%.1f", lineterminator="\n")


def write_movies(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(np.arange(1, MAX_MOVIE_ID + 1), size=RATED, replace=False))
    unrated = np.setdiff1d(np.arange(1, MAX_MOVIE_ID + 1), movie_ids)[: MOVIES - RATED]
    ids = np.sort(np.concatenate([movie_ids, unrated]))
    genres = np.array(["Drama", "Comedy|Romance", "Action|Sci-Fi|Thriller", "(no genres listed)"])
    years = rng.integers(1900, 2016, len(ids))
    titles = [f'"Movie {i}, The ({y})"' for i, y in zip(ids, years, strict=True)]
    lines = [f"{i},{t},{g}" for i, t, g in zip(ids, titles, rng.choice(genres, len(ids)), strict=True)]
    path.write_text("movieId,title,genres\n" + "\n".join(lines) + "\n", encoding="utf-8")


def run_child(step: str, root: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, step, str(root)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="specrec-ml20m-", dir=args.dir))
    try:
        mirror = root / "mirror" / "ml-20m"
        mirror.mkdir(parents=True)
        start = time.perf_counter()
        write_ratings(mirror / "ratings.csv", args.rows, args.users)
        write_movies(mirror / "movies.csv")
        generated = time.perf_counter() - start
        size = (mirror / "ratings.csv").stat().st_size
        steps = {step: run_child(step, root) for step in ("materialize", "prepare")}
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        summary = steps["prepare"]["result"]
        print(f"ratings.csv: {args.rows:,} rows, {size / 2**20:,.0f} MiB, generated in {generated:.1f} s")
        print(
            f"prepare: {summary['n_users']:,} users, {summary['n_items']:,} items, "
            f"{summary['n_interactions']:,} interactions (rating >= {summary['rating_threshold']})"
        )
        print()
        print(f"| {'step':<13} | {'wall (s)':>9} | {'peak RSS (MiB)':>14} |")
        print(f"|{'-' * 15}|{'-' * 11}|{'-' * 16}|")
        for step, result in steps.items():
            print(f"| {step:<13} | {result['wall_s']:>9.1f} | {result['peak_rss'] / 2**20:>14,.0f} |")
        print(f"| {'largest child':<13} | {'':>9} | {children_peak / 2**20:>14,.0f} |")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
