"""Run-epochs per second of runs trained as one stack (specrec.train: the grid points of a recipe on the
same batches, one step for all of them, each run with its own optimiser) against the same runs trained one
after another; on a GPU also the share of the memory-bandwidth floor a stack reaches (bandwidth_floor.py's
bytes, K times: every run moves its own tables).

python benchmarks/stack_throughput.py results/data/gowalla/split/seed123 --device cuda --sizes 1 8 16 32 \
    --profile 16

Stack size 1 is a run alone (the same code): `speed-up` is K x (seconds of one run's epoch) / (seconds of
the stack's epoch), measured in the same process one after another.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from bandwidth_floor import copy_bandwidth, lightgcn_step_bytes, mf_step_bytes
from epoch_times import set_up, stack_works, synchronize, time_stack
from torch.autograd import DeviceType

from specrec.io import write_csv
from specrec.train import load_data, train_epoch


def step_bytes(data, model: str, batch: int, dim: int) -> int:
    """The bytes one run's step must move at least (bandwidth_floor.py)."""
    nodes = data.split.n_users + data.split.n_items
    if model == "lightgcn":
        nnz = 2 * int(torch.unique(data.train.keys).numel())
        return lightgcn_step_bytes(nodes, nnz, batch, dim)
    return mf_step_bytes(nodes, batch, dim)


def profile_epoch(works, data, device: str, steps: int, rows: int = 12) -> str:
    """What one epoch of a stack spends its time on: the operators with the most time of their own on the
    device (the CPU where there is no GPU), and on a GPU the kernels launched per step (a launch-bound step
    is many small kernels)."""
    from torch.profiler import ProfilerActivity, profile

    on_gpu = device.startswith("cuda")
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_gpu else [])]
    with profile(activities=activities) as profiler:
        train_epoch(works, data)
        synchronize(device)
    averages = profiler.key_averages()
    table = averages.table(
        sort_by="self_device_time_total" if on_gpu else "self_cpu_time_total", row_limit=rows
    )
    if not on_gpu:
        return table
    kernels = sum(event.count for event in averages if event.device_type == DeviceType.CUDA)
    return f"{table}\nkernels launched: {kernels:,} in {steps:,} steps, {kernels / steps:.0f} a step"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split_dirs", nargs="+", type=Path)
    parser.add_argument("--runs", nargs="+", default=["mf:bpr", "lightgcn:bpr"], help="model:recipe pairs")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 4, 8], help="stack sizes (runs)")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per stack (the mean is used)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    parser.add_argument("--csv", type=Path)
    parser.add_argument(
        "--profile", type=int, metavar="K", help="also profile one epoch of each stack of K runs"
    )
    args = parser.parse_args()
    config, settings, name = set_up(args)
    bandwidth = copy_bandwidth(args.device) if args.device.startswith("cuda") else None
    print(f"device: {name}, torch {torch.__version__}, {args.threads} CPU threads", end="")
    print(f", copy bandwidth {bandwidth / 1e9:.0f} GB/s" if bandwidth else "")
    print(
        f"{'split':<28} {'run':<14} {'K':>3} {'s/epoch':>8} {'run-epochs/s':>13} {'speed-up':>9} {'floor':>6}"
    )
    rows = []
    for split_dir in args.split_dirs:
        data = load_data(split_dir, args.device)
        steps = -(-data.train.indices.numel() // settings.batch_size)
        for pair in args.runs:
            model, recipe = pair.split(":")
            floor = (
                steps * step_bytes(data, model, settings.batch_size, settings.dim) / bandwidth
                if bandwidth
                else None
            )
            alone = None
            for size in args.sizes:
                works = stack_works(data, model, recipe, config, settings, args.device, size)
                epoch, _ = time_stack(works, data, settings, args)
                if size == args.profile:
                    profile = profile_epoch(works, data, args.device, steps)
                    print(f"one epoch of {pair}, {size} runs stacked:\n{profile}")
                del works
                alone = alone or (epoch if size == 1 else None)
                row = {
                    "device": name,
                    "threads": args.threads,
                    "split": str(split_dir),
                    "run": pair,
                    "stack_size": size,
                    "epoch_seconds": epoch,
                    "run_epochs_per_second": size / epoch,
                    "speed_up": size * alone / epoch if alone else None,
                    "share_of_floor": size * floor / epoch if floor else None,
                }
                rows.append(row)
                speed_up = f"{row['speed_up']:>8.2f}x" if alone else f"{'':>9}"
                share = f"{row['share_of_floor']:>6.1%}" if floor else f"{'':>6}"
                print(
                    f"{str(split_dir)[-28:]:<28} {pair:<14} {size:>3} {epoch:>8.3f} "
                    f"{size / epoch:>13.2f} {speed_up} {share}",
                    flush=True,
                )
    if args.csv:
        write_csv(args.csv, pd.DataFrame(rows))


if __name__ == "__main__":
    main()
