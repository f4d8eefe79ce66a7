"""Seconds per training epoch with the recipe's loss and regularisers eager and through torch.compile
(`train.compile`), side by side in one process, and what compiling costs.

python benchmarks/compiled_losses.py results/data/ml-1m/split/seed123 --runs mf:bpr mf:ssm --threads 1

Each (model, recipe) pair trains two runs from the same initialisation, one eager and one compiled; their
epochs alternate (eager, compiled, eager, ...), so that both see the same machine. `first epoch` is the
compiled run's first epoch, compiling included, with an empty compiler cache (a fresh training job on a
new node; a warm on-disk cache, TORCHINDUCTOR_CACHE_DIR, shortens it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from epoch_times import set_up, stack_works, synchronize

from specrec.io import write_csv
from specrec.train import load_data, train_epoch


def timed_epoch(works, data, device: str) -> float:
    synchronize(device)
    start = time.perf_counter()
    train_epoch(works, data)
    synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split_dirs", nargs="+", type=Path)
    parser.add_argument("--runs", nargs="+", default=["mf:bpr", "mf:ssm", "lightgcn:bpr"])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per run, after the first")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    config, settings, name = set_up(args)
    print(f"device: {name}, torch {torch.__version__}, {args.threads} CPU threads")
    print(f"{'split':<28} {'run':<18} {'eager s':>8} {'compiled s':>11} {'speed-up':>9} {'first epoch':>12}")
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # cold: what a job on a fresh node pays
        for split_dir in args.split_dirs:
            data = load_data(split_dir, args.device)
            for pair in args.runs:
                row = compare(data, pair, config, settings, args) | {"device": name, "split": str(split_dir)}
                rows.append(row)
                eager, compiled = row["eager_seconds"], row["compiled_seconds"]
                print(
                    f"{str(split_dir)[-28:]:<28} {pair:<18} {eager:>8.3f} {compiled:>11.3f} "
                    f"{row['speed_up']:>8.2f}x {row['first_epoch_seconds']:>11.1f}s",
                    flush=True,
                )
    if args.csv:
        write_csv(args.csv, pd.DataFrame(rows))


def compare(data, pair: str, config: dict, settings, args) -> dict:
    """Median seconds per epoch of one eager and one compiled run of `pair`, epochs alternating."""
    model, recipe = pair.split(":")
    eager = stack_works(data, model, recipe, config, settings, args.device, size=1)
    compiled = stack_works(data, model, recipe, config, settings, args.device, size=1)
    compiled[0].recipe.compile()
    torch._dynamo.reset()
    timed_epoch(eager, data, args.device)
    first = timed_epoch(compiled, data, args.device)
    times = {"eager": [], "compiled": []}
    for _ in range(args.epochs):
        times["eager"].append(timed_epoch(eager, data, args.device))
        times["compiled"].append(timed_epoch(compiled, data, args.device))
    eager_seconds, compiled_seconds = (statistics.median(times[kind]) for kind in ("eager", "compiled"))
    return {
        "run": pair,
        "threads": args.threads,
        "eager_seconds": round(eager_seconds, 4),
        "compiled_seconds": round(compiled_seconds, 4),
        "speed_up": round(eager_seconds / compiled_seconds, 3),
        "first_epoch_seconds": round(first, 2),
    }


if __name__ == "__main__":
    main()
