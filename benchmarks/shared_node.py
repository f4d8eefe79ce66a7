"""Seconds per training epoch when training jobs share a node's cores, under OpenMP's wait policies.

    python benchmarks/shared_node.py results/data/ml-1m/split/seed123 --run mf:bpr --threads 2 --epochs 3

Runs `epoch_times.py` alone, then two copies at once on the same cores (two 2-thread jobs on 2 CPUs: two
Snakemake instances, or a node shared without CPU binding), under OpenMP's default wait policy (libgomp: a
thread that runs out of work spins before it sleeps), with OMP_WAIT_POLICY=PASSIVE (it sleeps at once) and
with a short spin (GOMP_SPINCOUNT=1000); and two 1-thread copies, which share the cores without
oversubscribing them. Every copy is a fresh process. Prints seconds per epoch of each copy and the slowest
against the default process alone, side by side from one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def epoch_seconds(
    split_dir: Path, run: str, threads: int, epochs: int, copies: int, env: dict
) -> list[float]:
    """s/epoch of each of `copies` epoch_times.py processes started together."""
    with tempfile.TemporaryDirectory() as folder:
        csvs = [Path(folder) / f"{copy}.csv" for copy in range(copies)]
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "epoch_times.py"),
                    str(split_dir),
                    "--runs",
                    run,
                    "--threads",
                    str(threads),
                    "--epochs",
                    str(epochs),
                    "--csv",
                    str(csv),
                    "--config",
                    str(HERE.parent / "config" / "config.yaml"),
                ],
                env=os.environ | env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for csv in csvs
        ]
        for process in processes:
            _, errors = process.communicate()
            if process.returncode:
                raise SystemExit(f"epoch_times.py failed:\n{errors[-2000:]}")
        return [float(pd.read_csv(csv)["epoch_seconds"].iloc[0]) for csv in csvs]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split_dir", type=Path)
    parser.add_argument("--run", default="mf:bpr", help="model:recipe of config/config.yaml")
    parser.add_argument("--threads", type=int, default=2, help="threads of each process")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per process (the mean is kept)")
    args = parser.parse_args()
    threads, passive, short_spin = args.threads, {"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "1000"}
    scenarios = [  # label, processes, threads each, environment
        ("alone, OpenMP default", 1, threads, {}),
        ("two at once, OpenMP default", 2, threads, {}),
        ("alone, OMP_WAIT_POLICY=PASSIVE", 1, threads, passive),
        ("two at once, OMP_WAIT_POLICY=PASSIVE", 2, threads, passive),
        ("alone, GOMP_SPINCOUNT=1000", 1, threads, short_spin),
        ("two at once, GOMP_SPINCOUNT=1000", 2, threads, short_spin),
        ("two at once, 1 thread each, default", 2, 1, {}),
    ]
    print(f"{args.run} on {args.split_dir}, {args.epochs} epochs timed per process, {os.cpu_count()} CPUs")
    print(f"| {'processes':<40} | {'s/epoch (each)':>22} | {'x alone':>8} |")
    print(f"| {'-' * 40} | {'-' * 22}:| {'-' * 8}:|")
    alone = None
    for label, copies, each, env in scenarios:
        seconds = epoch_seconds(args.split_dir, args.run, each, args.epochs, copies, env)
        alone = alone or seconds[0]
        shown = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"| {label:<40} | {shown:>22} | {max(seconds) / alone:>7.1f}x |", flush=True)


if __name__ == "__main__":
    main()
