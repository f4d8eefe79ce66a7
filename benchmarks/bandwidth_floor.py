"""Seconds per training epoch on a GPU against the memory-bandwidth floor: the bytes an epoch must move at
the device's measured copy bandwidth. MF-BPR and LightGCN-BPR, batch 4,096, one negative, d 64, fp32, Adam.

python benchmarks/bandwidth_floor.py results/data/gowalla/split/seed123 --device cuda

Bytes a step must move (4 bytes a float; P = (users + items) x d parameters, B the batch, n negatives):
- Adam reads parameters, gradients and both moments and writes three back, and the dense gradient is
  written once: 8 P floats;
- the batch's rows are read in the forward pass and their gradients added in the backward: 3 (2 + n) B d;
- LightGCN on top: per layer and direction one CSR product (8-byte column and 4-byte value per non-zero,
  its input read and its output written: 12 nnz + 8 P bytes), and the mean of the K + 1 layers, forward
  and backward (2 (K + 2) P floats).
Everything else (sampling, the loss, launch overhead) counts as above the floor.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from epoch_times import set_up, synchronize, time_run

from specrec.io import write_csv
from specrec.train import load_data


def mf_step_bytes(n_nodes: int, batch: int, dim: int, negatives: int = 1) -> int:
    return 4 * (8 * n_nodes * dim + 3 * (2 + negatives) * batch * dim)


def lightgcn_step_bytes(n_nodes: int, nnz: int, batch: int, dim: int, layers: int = 3) -> int:
    products = 2 * layers * (12 * nnz + 8 * n_nodes * dim)
    combine = 4 * 2 * (layers + 2) * n_nodes * dim
    return products + combine + mf_step_bytes(n_nodes, batch, dim)


def copy_bandwidth(device: str, gib: float = 1.0, repeats: int = 20) -> float:
    """Bytes per second of a device-to-device copy (each copy reads and writes `gib`)."""
    source = torch.empty(int(gib * 2**30) // 4, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        target.copy_(source)
    synchronize(device)
    return 2 * source.numel() * 4 * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split_dirs", nargs="+", type=Path)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    config, settings, name = set_up(args)
    bandwidth = copy_bandwidth(args.device)
    print(f"{name}: measured copy bandwidth {bandwidth / 1e9:.0f} GB/s")
    print(f"{'split':<36} {'model':<9} {'s/epoch':>8} {'GB/epoch':>9} {'floor s':>8} {'share':>6}")
    rows = []
    for split_dir in args.split_dirs:
        data = load_data(split_dir, args.device)
        nodes, batch = data.split.n_users + data.split.n_items, settings.batch_size
        steps = -(-data.train.indices.numel() // batch)
        nnz = 2 * int(torch.unique(data.train.keys).numel())
        per_step = {"mf": mf_step_bytes(nodes, batch, settings.dim)}
        per_step["lightgcn"] = lightgcn_step_bytes(nodes, nnz, batch, settings.dim)
        for model, step_bytes in per_step.items():
            epoch, _ = time_run(data, model, "bpr", config, settings, args)
            floor = steps * step_bytes / bandwidth
            print(
                f"{str(split_dir)[-36:]:<36} {model:<9} {epoch:>8.3f} {steps * step_bytes / 1e9:>9.1f} "
                f"{floor:>8.4f} {floor / epoch:>6.1%}",
                flush=True,
            )
            rows.append(
                {
                    "device": name,
                    "split": str(split_dir),
                    "model": model,
                    "epoch_seconds": epoch,
                    "steps": steps,
                    "bytes_per_epoch": steps * step_bytes,
                    "copy_bandwidth_bytes_per_s": bandwidth,
                    "floor_seconds": floor,
                    "share_of_floor": floor / epoch,
                }
            )
    if args.csv:
        write_csv(args.csv, pd.DataFrame(rows))


if __name__ == "__main__":
    main()
