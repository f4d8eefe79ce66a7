"""Milliseconds per training step of each recipe, and seconds per full-ranking evaluation, on a real split."""

from __future__ import annotations

import argparse
import time

import torch
import yaml

from specrec.evaluate import rank_metrics
from specrec.losses import build_loss
from specrec.models import MODELS
from specrec.train import load_data, train_step


def timed(step, repeats: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("split_dir")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(open(args.config))
    settings = config["train"]
    data = load_data(args.split_dir, args.device)
    model = MODELS["mf"](data.split.n_users, data.split.n_items, dim=settings["dim"]).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    generator = torch.Generator(device=args.device).manual_seed(0)
    users, items = data.train.pairs()
    batch = torch.randperm(users.numel(), generator=generator, device=args.device)[: settings["batch_size"]]
    u, i = users[batch], items[batch]
    print(f"{'recipe':<12} {'negatives':>9} {'sampler':>8} {'ms/step':>8} {'s/epoch':>8}")
    steps = -(-users.numel() // settings["batch_size"])
    for name, recipe in config["recipes"].items():
        loss_fn = build_loss(recipe)
        seconds = timed(
            lambda f=loss_fn: train_step(model, f, optimizer, u, i, data.train, generator), args.repeats
        )
        row = f"{name:<12} {loss_fn.n_negatives:>9} {loss_fn.sampler:>8}"
        print(f"{row} {1000 * seconds:>8.1f} {seconds * steps:>8.1f}")
    with torch.no_grad():
        tables = model()
        evaluation = timed(lambda: rank_metrics(*tables, data.valid, [data.train], ks=[20]), 3)
    size = f"{data.split.n_users} users x {data.split.n_items} items"
    print(f"full-ranking validation: {evaluation:.3f} s ({size})")


if __name__ == "__main__":
    main()
