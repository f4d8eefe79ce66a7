"""The whole benchmark in one command; every part prints its table and writes a CSV to --out.

python benchmarks/suite.py --mirror ../shared/data

1. Snakemake prepares what the benchmarks read (the default DAG, ML-1M and Gowalla splits at seed 123,
   the ML-1M synopsis embeddings), then times no-op runs of the default DAG and of the text encoding target
   (a second encoding costs nothing: its output is Snakemake's cache).
2. epoch_times.py: seconds per epoch and per full-ranking evaluation of MF-BPR, LightGCN-BPR, MF-DirectAU
   and MF-DirectSpec+ on both datasets.
3. text_encoding.py: items/s of specrec's encoder against a bare SentenceTransformer.encode.
4. versus_recbole.py: side by side with RecBole 1.2.1 (installed once into benchmarks/.recbole-env).
5. stack_throughput.py: MF-BPR and LightGCN-BPR on ML-1M, 4 runs as one stack against one after another.
6. compiled_losses.py: MF-BPR and MF-SSM on ML-1M, losses eager against compiled (`train.compile`).
7. study_throughput.py: paper3_quick at seed 123, end to end, one run per training job against groups of 4.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from specrec.io import write_csv

ROOT = Path(__file__).resolve().parent.parent
SPLITS = [ROOT / "results/data/ml-1m/split/seed123", ROOT / "results/data/gowalla/split/seed123"]
TEXT = "results/data/ml-1m/text/all-MiniLM-L6-v2.npy"
PARTS = ("noop", "epochs", "text", "recbole", "stacks", "compile", "study")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirror", required=True, help="the offline dataset mirror (../shared/data)")
    parser.add_argument("--out", type=Path, default=ROOT / "results/benchmarks")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    args = parser.parse_args()
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "all", "--config", f"mirror={args.mirror}"]
    split_files = [str((split / "split.json").relative_to(ROOT)) for split in SPLITS]
    section("preparing data with Snakemake (once)")
    run([*snakemake, "--quiet", "--"])  # the default DAG: the no-op below times a complete one
    run([*snakemake, "--quiet", "--", *split_files, TEXT])
    threads = ["--threads", str(args.threads)]
    if "noop" in args.parts:
        section("no-op Snakemake runs")
        noop_times(snakemake, args.out / "noop.csv")
    if "epochs" in args.parts:
        section("seconds per epoch and per evaluation")
        runs = ["mf:bpr", "lightgcn:bpr", "mf:directau", "mf:directspec_plus"]
        script = ["benchmarks/epoch_times.py", *map(str, SPLITS), "--runs", *runs, "--warmup", "1"]
        run([sys.executable, *script, "--epochs", "2", *threads, "--csv", str(args.out / "epoch_times.csv")])
    if "text" in args.parts:
        section("text encoding throughput")
        script = ["benchmarks/text_encoding.py", "results/data/ml-1m/items.parquet"]
        run([sys.executable, *script, *threads, "--csv", str(args.out / "text_encoding.csv")])
    if "recbole" in args.parts:
        section("side by side with RecBole 1.2.1")
        script = ["benchmarks/versus_recbole.py", *map(str, SPLITS)]
        run([sys.executable, *script, *threads, "--csv", str(args.out / "versus_recbole.csv")])
    if "stacks" in args.parts:
        section("runs trained as one stack against one after another")
        script = ["benchmarks/stack_throughput.py", str(SPLITS[0]), "--sizes", "1", "4"]
        run([sys.executable, *script, *threads, "--csv", str(args.out / "stack_throughput.csv")])
    if "compile" in args.parts:
        section("losses through torch.compile against eager")
        script = ["benchmarks/compiled_losses.py", str(SPLITS[0]), "--runs", "mf:bpr", "mf:ssm"]
        run([sys.executable, *script, *threads, "--csv", str(args.out / "compiled_losses.csv")])
    if "study" in args.parts:
        section("a whole study, one run per training job against groups")
        script = ["benchmarks/study_throughput.py", "--mirror", args.mirror, "--seeds", "123"]
        script += ["--group-sizes", "1", "4", "--csv", str(args.out / "study_throughput.csv")]
        run([sys.executable, *script])
    print(f"\nCSV files in {args.out}")


def noop_times(snakemake: list[str], csv: Path, repeats: int = 3) -> None:
    targets = {"default DAG": [], "text encoding (second run)": [TEXT]}
    rows = []
    for name, target in targets.items():
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            run([*snakemake, "--quiet", "--", *target], quiet=True)
            seconds.append(time.perf_counter() - start)
        rows.append({"target": name, "median_seconds": statistics.median(seconds), "runs": repeats})
        print(f"{name:<28} {statistics.median(seconds):6.2f} s (median of {repeats})", flush=True)
    write_csv(csv, pd.DataFrame(rows))


def run(command: list[str], quiet: bool = False) -> None:
    output = subprocess.DEVNULL if quiet else None
    subprocess.run(command, check=True, cwd=ROOT, stdout=output, stderr=output)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


if __name__ == "__main__":
    main()
