"""The one training loop: mini-batches of training edges, sampled negatives, Adam, per-epoch validation
with full ranking, spectral logging, early stopping with restore of the best epoch, and resumable
checkpoints. Every model and loss goes through it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

import specrec
from specrec import io
from specrec.data.split import Split, load_split
from specrec.evaluate import rank_metrics
from specrec.interactions import UserItems
from specrec.losses import build_loss
from specrec.models import MODELS
from specrec.runtime import pick_device, seed_everything, set_threads
from specrec.samplers import SAMPLERS
from specrec.spectral import effective_rank, stable_rank

log = logging.getLogger("specrec.train")

EPOCH_COLUMNS = [
    "epoch",
    "loss",
    "valid_recall@20",
    "valid_ndcg@20",
    "epoch_seconds",
    "eval_seconds",
    "elapsed_seconds",
    "user_stable_rank",
    "item_stable_rank",
    "user_effective_rank",
    "item_effective_rank",
]


@dataclass
class TrainSettings:
    """The `train:` section of the config (see config/README.md for each key)."""

    dim: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 4096
    epochs: int = 100
    patience: int = 5
    init_std: float = 0.1
    eval_batch_size: int = 1024
    ks: list[int] = field(default_factory=lambda: [10, 20, 50])
    mask_valid_at_test: bool = True
    device: str = "auto"

    @classmethod
    def from_config(cls, section: dict) -> TrainSettings:
        # `threads` is a scheduling choice of the workflow: it is passed to the job, not part of the run
        settings = {key: value for key, value in section.items() if key != "threads"}
        unknown = set(settings) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown train settings {sorted(unknown)}")
        return cls(**settings)


@dataclass
class RunSpec:
    """What one training job is: its identity, its inputs and where its outputs go."""

    dataset: str
    model: str
    recipe_name: str
    recipe: dict
    seed: int
    split_dir: Path
    run_dir: Path
    settings: TrainSettings
    threads: int = 1

    def fingerprint(self) -> str:
        """Hash of everything that changes the result, so a checkpoint of other settings is never resumed."""
        key = [self.dataset, self.model, self.recipe, self.seed, asdict(self.settings), str(self.split_dir)]
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Data:
    split: Split
    train: UserItems
    valid: UserItems
    test: UserItems


def load_data(split_dir: Path, device: str) -> Data:
    split = load_split(split_dir)
    sets = {
        name: UserItems.from_frame(frame, split.n_users, split.n_items).to(device)
        for name, frame in (("train", split.train), ("valid", split.valid), ("test", split.test))
    }
    return Data(split=split, **sets)


def train_step(model, loss_fn, optimizer, users, items, train: UserItems, generator) -> float:
    """One Adam step on a mini-batch of (user, positive item) edges; returns the loss."""
    user_table, item_table = model()
    negatives = None
    if getattr(loss_fn, "n_negatives", 0) > 0:
        sampler = SAMPLERS[loss_fn.sampler]
        negatives = item_table[sampler(users, loss_fn.n_negatives, train, generator)]
    loss = sum(loss_fn(user_table[users], item_table[items], negatives).values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train_epoch(model, loss_fn, optimizer, data: Data, settings: TrainSettings, generator) -> float:
    """One pass over the training edges in random order; returns the mean loss."""
    users, items = data.train.pairs()
    order = torch.randperm(users.numel(), generator=generator, device=users.device)
    losses = [
        train_step(model, loss_fn, optimizer, users[batch], items[batch], data.train, generator)
        for batch in order.split(settings.batch_size)
    ]
    return sum(losses) / max(len(losses), 1)


def spectral_row(user_table: torch.Tensor, item_table: torch.Tensor) -> dict:
    with torch.no_grad():
        u, i = user_table.detach().double(), item_table.detach().double()
        return {
            "user_stable_rank": float(stable_rank(u)),
            "item_stable_rank": float(stable_rank(i)),
            "user_effective_rank": float(effective_rank(u)),
            "item_effective_rank": float(effective_rank(i)),
        }


def validate(model, data: Data, settings: TrainSettings) -> dict:
    with torch.no_grad():
        user_table, item_table = model()
        metrics = rank_metrics(
            user_table, item_table, data.valid, [data.train], ks=[20], batch_size=settings.eval_batch_size
        )
    return {"valid_recall@20": metrics["recall@20"], "valid_ndcg@20": metrics["ndcg@20"]}


class Checkpoint:
    """Everything needed to resume an interrupted run exactly where it stopped, written atomically."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint

    def load(self, device: str) -> dict | None:
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location=device, weights_only=False)
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring checkpoint %s: it was written with other settings", self.path)
            return None
        return state

    def save(self, state: dict) -> None:
        with io.atomic_path(self.path) as tmp:
            torch.save(state | {"fingerprint": self.fingerprint}, tmp)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def fit(spec: RunSpec, model, data: Data, device: str) -> tuple[list[dict], int]:
    """Train with early stopping on validation NDCG@20; leaves the best epoch's weights in `model`."""
    settings = spec.settings
    loss_fn = build_loss(spec.recipe)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    checkpoint = Checkpoint(spec.run_dir / "checkpoint.pt", spec.fingerprint())
    state = checkpoint.load(device)
    history: list[dict] = []
    best = {"score": -math.inf, "epoch": 0, "weights": copy.deepcopy(model.state_dict()), "bad": 0}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu())  # RNG states are CPU byte tensors, even for CUDA
        history, best = state["history"], state["best"]
        log.info("resuming %s from epoch %d", spec.run_dir, len(history))
    progress = tqdm(range(len(history) + 1, settings.epochs + 1), desc=str(spec.run_dir), mininterval=2.0)
    for epoch in progress:
        if best["bad"] >= settings.patience:
            break
        start = time.perf_counter()
        model.train()
        loss = train_epoch(model, loss_fn, optimizer, data, settings, generator)
        trained = time.perf_counter()
        model.eval()
        row = {"epoch": epoch, "loss": loss} | validate(model, data, settings) | spectral_row(*model())
        row["epoch_seconds"] = trained - start
        row["eval_seconds"] = time.perf_counter() - trained
        row["elapsed_seconds"] = (history[-1]["elapsed_seconds"] if history else 0.0) + (
            time.perf_counter() - start
        )
        history.append(row)
        if row["valid_ndcg@20"] > best["score"]:
            best = {
                "score": row["valid_ndcg@20"],
                "epoch": epoch,
                "weights": copy.deepcopy(model.state_dict()),
            }
            best["bad"] = 0
        else:
            best["bad"] += 1
        progress.set_postfix(loss=f"{loss:.4f}", ndcg=f"{row['valid_ndcg@20']:.4f}", best=best["epoch"])
        log.info("epoch %d loss %.5f valid ndcg@20 %.5f", epoch, loss, row["valid_ndcg@20"])
        checkpoint.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "history": history,
                "best": best,
            }
        )
    model.load_state_dict(best["weights"])
    return history, best["epoch"]


def run(spec: RunSpec) -> dict:
    """Train (or fit) one (dataset, model, recipe, seed); write epochs.csv, embeddings.npz, metrics.json."""
    settings = spec.settings
    set_threads(spec.threads)
    seed_everything(spec.seed)
    device = pick_device(settings.device)
    data = load_data(spec.split_dir, device)
    model = MODELS[spec.model](
        data.split.n_users,
        data.split.n_items,
        dim=settings.dim,
        init_std=settings.init_std,
        train_items=data.train.indices,
    ).to(device)
    started = time.perf_counter()
    if model.trainable:
        history, best_epoch = fit(spec, model, data, device)
    else:
        model.eval()
        history = [
            {"epoch": 0, "loss": float("nan")} | validate(model, data, settings) | spectral_row(*model())
        ]
        history[0] |= {"epoch_seconds": 0.0, "eval_seconds": 0.0, "elapsed_seconds": 0.0}
        best_epoch = 0
    train_seconds = time.perf_counter() - started
    metrics = final_metrics(spec, model, data, device) | {
        "best_epoch": best_epoch,
        "epochs_run": len(history) if model.trainable else 0,
        "train_seconds": train_seconds,
    }
    write_outputs(spec, model, history, metrics)
    return metrics


def final_metrics(spec: RunSpec, model, data: Data, device: str) -> dict:
    settings = spec.settings
    with torch.no_grad():
        user_table, item_table = model()
        test_exclude = [data.train, data.valid] if settings.mask_valid_at_test else [data.train]
        kwargs = {"ks": settings.ks, "batch_size": settings.eval_batch_size}
        valid = rank_metrics(user_table, item_table, data.valid, [data.train], **kwargs)
        test = rank_metrics(user_table, item_table, data.test, test_exclude, **kwargs)
    return {
        "dataset": spec.dataset,
        "model": spec.model,
        "recipe": spec.recipe_name,
        "seed": spec.seed,
        "valid": valid,
        "test": test,
        "split": data.split.protocol,
        "device": device,
        "provenance": {
            "recipe": spec.recipe,
            "settings": asdict(settings),
            "threads": spec.threads,
            "specrec": specrec.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "n_users": data.split.n_users,
            "n_items": data.split.n_items,
        },
    }


def write_outputs(spec: RunSpec, model, history: list[dict], metrics: dict) -> None:
    """Embeddings and the per-epoch log first, metrics.json last; then the checkpoint is no longer needed."""
    with torch.no_grad():
        user_table, item_table = model()
    io.save_npz(
        spec.run_dir / "embeddings.npz",
        user=user_table.detach().float().cpu().numpy(),
        item=item_table.detach().float().cpu().numpy(),
    )
    io.write_csv(spec.run_dir / "epochs.csv", pd.DataFrame(history, columns=EPOCH_COLUMNS))
    io.write_json(spec.run_dir / "metrics.json", metrics)
    (spec.run_dir / "checkpoint.pt").unlink(missing_ok=True)


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as arrays:
        return arrays["user"], arrays["item"]
