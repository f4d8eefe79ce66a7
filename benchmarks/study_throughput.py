"""A whole study end to end, one run per training job against runs trained in groups, side by side.

    python benchmarks/study_throughput.py --mirror ../shared/data [--seeds 123] [--group-sizes 1 4]
        [--before REV] [--cores 2]

Each layout runs the study (default: config/experiments/paper3_quick.yaml on top of paper3.yaml) from an
empty folder with `snakemake --cores N`, one layout after another (never two at once: they would share the
cores). `--group-sizes` sets `train.group_size` (1: one process per run); `--before REV` also runs the study
as the workflow of a git revision had it (a worktree of REV, its own package on PYTHONPATH), e.g. the commit
before training groups, where every run was three jobs (train, spectrum, diversity). Prints, per layout:
wall seconds of the whole study (data preparation, training, tables, figures), Snakemake jobs, runs,
run-epochs (epochs trained, summed over runs), run-epochs per second, the speed-up over the first layout,
whether its results equal the first layout's (benchmarks/compare_results.py, bit for bit), and where the
runs' time went: the summed wall seconds of their jobs, of which their epochs (training and validation), and
the rest around the epochs (process starts, imports, data loading, final metrics, spectrum, diversity).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_results  # noqa: E402  (a sibling script)

from specrec import io  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["layout", "wall_seconds", "jobs", "runs", "run_epochs", "run_epochs_per_second", "results",
           "job_seconds", "epoch_seconds", "around_epochs_seconds"]  # fmt: skip
STUDY = ["config/experiments/paper3.yaml", "config/experiments/paper3_quick.yaml"]


def run_study(tree: Path, workdir: Path, args, overrides: list[str], pythonpath: Path | None) -> dict:
    """Run the study in `workdir` with the workflow of `tree`; wall seconds and the jobs Snakemake ran."""
    configs = [str(tree / "config/config.yaml"), *(str(tree / c) for c in args.study)]
    seeds = [f"seeds=[{','.join(map(str, args.seeds))}]"] if args.seeds else []
    command = [
        sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--snakefile", str(tree / "Snakefile"),
        "--directory", str(workdir), "--configfile", *configs,
        "--config", f"mirror={args.mirror}", *seeds, *overrides,
    ]  # fmt: skip
    env = os.environ | ({"PYTHONPATH": str(pythonpath / "src")} if pythonpath else {})
    start = time.perf_counter()
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0:
        sys.exit(f"the study failed in {workdir}:\n{output[-4000:]}")
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    return {"wall_seconds": seconds, "jobs": int(done[-1][1]) if done else None}


def run_epochs(results: Path) -> tuple[int, int]:
    """(runs, epochs trained summed over runs) from the runs' metrics.json."""
    records = [io.read_json(path) for path in (results / "runs").rglob("metrics.json")]
    return len(records), sum(record["epochs_run"] for record in records)


def time_shares(results: Path) -> dict:
    """Where the runs' time went: the wall seconds of every job with a benchmark record (training, and
    before groups each run's spectrum and diversity jobs), of which the runs' epochs (training and
    validation, epochs.csv); the rest is per-job work around them (process start, imports, data loading,
    final metrics, spectrum, diversity)."""
    jobs = sum(pd.read_csv(path, sep="\t")["s"].sum() for path in (results / "logs").rglob("*.benchmark.tsv"))
    epochs = sum(
        pd.read_csv(path)[["epoch_seconds", "eval_seconds"]].sum().sum()
        for path in (results / "runs").rglob("epochs.csv")
    )
    return {"job_seconds": jobs, "epoch_seconds": epochs, "around_epochs_seconds": jobs - epochs}


def layout_folder(base: Path, label: str) -> Path:
    """Where a layout's study runs (and its measurement is kept) inside the benchmark's folder."""
    return base / re.sub(r"\W+", "_", label)


def equal_results(first: Path, other: Path) -> str:
    with redirect_stdout(StringIO()) as printed:
        differs = compare_results.main([str(first), str(other), "--rtol", "0"])
    summary = printed.getvalue().strip().splitlines()[-1]  # "N files compared, D differ, O on one side only"
    return ("equal: " if not differs else "DIFFERENT: ") + summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirror", required=True, help="the offline dataset mirror (../shared/data)")
    parser.add_argument("--study", nargs="+", default=STUDY, help="config files on top of config/config.yaml")
    parser.add_argument("--seeds", nargs="+", type=int, help="the study's seeds (default: the config's)")
    parser.add_argument("--group-sizes", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--before", help="a git revision whose workflow runs the study first")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep each layout's folder here, and reuse a layout measured there before",
    )
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)
    scratch = tempfile.TemporaryDirectory(prefix="study_throughput.")
    base = args.workdir or Path(scratch.name)
    layouts = [
        (f"group_size {size}", ROOT, [f"train={{group_size: {size}}}"], None) for size in args.group_sizes
    ]
    before_tree = base / "before-tree"
    if args.before:
        subprocess.run(
            ["git", "worktree", "add", "--force", "--detach", str(before_tree), args.before],
            cwd=ROOT,
            check=True,
        )
        layouts.insert(0, (f"at {args.before}", before_tree, [], before_tree))
    first = layout_folder(base, layouts[0][0]) / "results"
    rows = []
    try:
        for label, tree, overrides, pythonpath in layouts:
            workdir = layout_folder(base, label)
            record = workdir / "study_throughput.json"
            if record.exists():  # measured before in this --workdir: not run again
                print(f"{label}: measured before, read from {record}", flush=True)
                rows.append(io.read_json(record))
                continue
            workdir.mkdir(parents=True, exist_ok=True)
            print(f"{label}: running the study in {workdir} ...", flush=True)
            row = {"layout": label} | run_study(tree, workdir, args, overrides, pythonpath)
            row["runs"], row["run_epochs"] = run_epochs(workdir / "results")
            row["run_epochs_per_second"] = row["run_epochs"] / row["wall_seconds"]
            row["results"] = "(reference)" if not rows else equal_results(first, workdir / "results")
            io.write_json(record, row)
            rows.append(row)
    finally:
        if args.before:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT)
    for row in rows:
        row |= time_shares(layout_folder(base, row["layout"]) / "results")
    table = pd.DataFrame(rows)[COLUMNS]
    table["speed_up"] = table["wall_seconds"].iloc[0] / table["wall_seconds"]
    seeds = args.seeds or "the config's"
    print(f"\n{' + '.join(args.study)}, seeds {seeds}, snakemake --cores {args.cores}")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    if args.csv:
        io.write_csv(args.csv, table)


if __name__ == "__main__":
    main()
