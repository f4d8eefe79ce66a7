"""Seconds per training epoch and per full-ranking validation of (model, recipe) pairs on prepared splits.

python benchmarks/epoch_times.py results/data/ml-1m/split/seed2024 --runs mf:bpr lightgcn:bpr --threads 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
import yaml

from specrec.io import write_csv
from specrec.models import MODELS
from specrec.recipes import Recipe, resolve_recipe
from specrec.runtime import keep_freed_memory
from specrec.train import EpochWork, TrainSettings, load_data, make_optimizer, train_epoch, validate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split_dirs", nargs="+", type=Path)
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["mf:bpr", "lightgcn:bpr"],
        help="model:recipe pairs (recipe may be base+addon)",
    )
    parser.add_argument(
        "--config", default="config/config.yaml", help="recipes, model options, train settings"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=1, help="epochs timed per run (the mean is printed)")
    parser.add_argument(
        "--warmup", type=int, default=0, help="untimed epochs first (kernel compilation and caches on a GPU)"
    )
    parser.add_argument("--csv", type=Path, help="also write the table here")
    args = parser.parse_args()
    config, settings, device_name = set_up(args)
    print(f"device: {device_name}, torch {torch.__version__}, {args.threads} CPU threads")
    print(f"{'split':<36} {'model':<10} {'recipe':<16} {'s/epoch':>8} {'s/eval':>7} {'users x items':>14}")
    rows = []
    for split_dir in args.split_dirs:
        data = load_data(split_dir, args.device)
        for run in args.runs:
            model_name, recipe_name = run.split(":")
            epoch, evaluation = time_run(data, model_name, recipe_name, config, settings, args)
            size = f"{data.split.n_users}x{data.split.n_items}"
            row = f"{str(split_dir)[-36:]:<36} {model_name:<10} {recipe_name:<16}"
            print(f"{row} {epoch:>8.2f} {evaluation:>7.2f} {size:>14}", flush=True)
            rows.append(
                {
                    "device": device_name,
                    "threads": args.threads,
                    "split": str(split_dir),
                    "model": model_name,
                    "recipe": recipe_name,
                    "epoch_seconds": round(epoch, 4),
                    "eval_seconds": round(evaluation, 4),
                    "n_users": data.split.n_users,
                    "n_items": data.split.n_items,
                    "n_train": int(data.train.indices.numel()),
                }
            )
    if args.csv:
        write_csv(args.csv, pd.DataFrame(rows))


def set_up(args) -> tuple[dict, TrainSettings, str]:
    """Threads and allocator as a training job has them; the config, its train settings, the device's name."""
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    config = yaml.safe_load(open(args.config))
    settings = TrainSettings.from_config(config["train"] | {"device": args.device})
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    return config, settings, device_name


def time_run(data, model_name: str, recipe_name: str, config: dict, settings, args) -> tuple[float, float]:
    """Mean seconds of `args.epochs` training epochs (after `args.warmup` untimed ones), and of one
    full-ranking validation."""
    works = stack_works(data, model_name, recipe_name, config, settings, args.device, size=1)
    return time_stack(works, data, settings, args)


def stack_works(data, model_name: str, recipe_name: str, config: dict, settings, device: str, size: int):
    """The epochs of `size` runs of one model and recipe as one stack trains them (specrec.train), each
    with its own learning rate (a grid: settings.lr halved 0-3 times) and optimiser."""
    users, items = data.train.pairs()
    resolved = resolve_recipe(recipe_name, config["recipes"], config.get("regularizers", {}))
    generator = torch.Generator(device=device).manual_seed(0)
    works = []
    for run in range(size):
        torch.manual_seed(run)
        model = MODELS[model_name](
            data.split.n_users,
            data.split.n_items,
            dim=settings.dim,
            init_std=settings.init_std,
            train_users=users,
            train_items=items,
            **config.get("model_options", {}).get(model_name, {}),
        ).to(device)
        recipe = Recipe.from_resolved(resolved)
        optimizer = make_optimizer(model, recipe, replace(settings, lr=settings.lr * 0.5 ** (run % 4)))
        works.append(EpochWork(model, recipe, optimizer, generator, settings.batch_size, 1, False))
    return works


def time_stack(works, data, settings, args) -> tuple[float, float]:
    """Mean seconds of `args.epochs` training epochs of the stack (after `args.warmup` untimed ones), and of
    one full-ranking validation of its first run."""
    for _ in range(args.warmup):
        train_epoch(works, data)
        validate(works[0].model, data, settings)
    synchronize(args.device)
    start = time.perf_counter()
    for _ in range(args.epochs):
        train_epoch(works, data)
    synchronize(args.device)
    trained = time.perf_counter()
    validate(works[0].model, data, settings)
    synchronize(args.device)
    return (trained - start) / args.epochs, time.perf_counter() - trained


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that a timer reads the work done rather than the work launched."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
