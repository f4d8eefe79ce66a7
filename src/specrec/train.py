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
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from specrec import io
from specrec.ctr import batched_ctr_metrics, ctr_metrics, ctr_rows
from specrec.data.split import Split, load_split
from specrec.diversity import top_k_lists_scored
from specrec.evaluate import Scorer, dot_scorer, scored_rank_metrics
from specrec.interactions import UserItems
from specrec.kg import load_kg, neighbour_sample
from specrec.losses import LOSSES, REGULARIZERS, Batch, TermContext
from specrec.models import MODELS
from specrec.recipes import SETTING_KEYS, Recipe
from specrec.runtime import (
    compiler_available,
    keep_freed_memory,
    pick_device,
    provenance,
    seed_everything,
    set_threads,
)
from specrec.samplers import SAMPLERS
from specrec.spectral import effective_rank, stable_rank

log = logging.getLogger("specrec.train")

CTR_SEED = 555  # KGCN's seed; the negatives of the CTR test rows are one fixed draw per split

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


SCHEDULING_KEYS = ("threads", "group_size", "stack", "compile")


def run_settings(section: dict) -> dict:
    """The config's `train:` section without the keys that choose how runs are trained (threads, group
    size, stacking, compiling): what a run's results depend on. The train rule's params, so that a change of
    threads, stacking or compiling trains no finished run again."""
    return {key: value for key, value in section.items() if key not in SCHEDULING_KEYS}


@dataclass
class TrainSettings:
    """The `train:` section of the config (see config/README.md for each key)."""

    dim: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 4096
    epochs: int = 100
    patience: int = 5
    patience_after_warm: str = "reset"  # or "carry": StableRankReg keeps counting across the switch
    init_std: float = 0.1
    eval_batch_size: int = 1024
    ctr_batch_size: int | None = None  # KGCN's AUC/F1: mean over test batches of this size (None: off)
    ks: list[int] = field(default_factory=lambda: [10, 20, 50])
    mask_valid_at_test: bool = True
    restore_best: bool = True
    device: str = "auto"

    @classmethod
    def from_config(cls, section: dict) -> TrainSettings:
        settings = run_settings(section)
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
    compile: bool = False  # train.compile: the recipe's loss and regularisers through torch.compile
    model_options: dict = field(default_factory=dict)
    checkpoint_dir: Path | None = None  # outside the run's outputs, so Snakemake never deletes it
    item_meta: Path | None = None  # items.parquet: for terms built from metadata (paper 1's pairs)
    text_embeddings: Path | None = None  # synopsis embeddings (.npy), for the same terms
    kg_dir: Path | None = None  # the item knowledge graph, for KGCN

    def __post_init__(self) -> None:
        # the one place a recipe's own values of train settings (lr, batch_size, epochs, ...) meet the
        # config's: from here on `settings` are this run's settings
        own = {key: self.recipe[key] for key in SETTING_KEYS if self.recipe.get(key) is not None}
        self.settings = replace(self.settings, **own)

    def term_context(self) -> TermContext:
        return TermContext(self.settings.dim, self.item_meta, self.text_embeddings)

    def fingerprint(self) -> str:
        """Hash of everything that changes the result, so a checkpoint of other settings is never resumed."""
        key = [self.dataset, self.model, self.model_options, self.recipe, self.seed, asdict(self.settings)]
        key.append(str(self.split_dir))
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Data:
    split: Split
    train: UserItems
    valid: UserItems
    test: UserItems

    @cached_property
    def train_by_item(self) -> UserItems:
        return self.train.transpose()

    @cached_property
    def active_users(self) -> torch.Tensor:
        """Users with at least one training item: the ones a user-sampled batch can draw."""
        return torch.nonzero(self.train.counts() > 0).squeeze(1)


def load_data(split_dir: Path, device: str) -> Data:
    split = load_split(split_dir)
    sets = {
        name: UserItems.from_frame(frame, split.n_users, split.n_items).to(device)
        for name, frame in (("train", split.train), ("valid", split.valid), ("test", split.test))
    }
    return Data(split=split, **sets)


def edge_batches(data: Data, batch_size: int, generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every training edge once per epoch, in random order (the stable-rank protocol)."""
    users, items = data.train.pairs()
    order = torch.randperm(users.numel(), generator=generator, device=users.device)
    # permuted once: every batch is then a slice (a view), not a gather of its own
    yield from zip(users[order].split(batch_size), items[order].split(batch_size), strict=True)


def user_batches(data: Data, batch_size: int, generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """|train| // B batches of uniform users (with replacement), one random positive each (DirectSpec)."""
    device = data.train.indptr.device
    for _ in range(max(1, data.train.indices.numel() // batch_size)):
        pick = torch.randint(data.active_users.numel(), (batch_size,), generator=generator, device=device)
        users = data.active_users[pick]
        start, count = data.train.indptr[users], data.train.counts()[users]
        offset = (torch.rand(batch_size, generator=generator, device=device) * count).long()
        yield users, data.train.indices[start + offset]


BATCHINGS = {"edges": edge_batches, "users": user_batches}


class _GatherRows(torch.autograd.Function):
    """table[ids] for one or more id tensors; the backward adds every output's row gradients into one
    zeroed table with `index_add_`: on a CPU 2-3x faster than the embedding backward (which sorts the ids),
    and one table-sized gradient for positives and negatives instead of one each."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, *ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ctx.save_for_backward(*ids)
        ctx.table_shape = table.shape
        return tuple(rows_of(table, part) for part in ids)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        table_grad = None
        for ids, grad in zip(ctx.saved_tensors, grads, strict=True):
            if grad is None:
                continue
            if table_grad is None:
                table_grad = grad.new_zeros(ctx.table_shape)
            # the rows' axis is the second last: a stack of runs' tables (K x n x d) has the run first
            rows = grad.reshape(*ctx.table_shape[:-2], -1, ctx.table_shape[-1])
            table_grad.index_add_(-2, ids.reshape(-1), rows)
        return (table_grad, *(None for _ in grads))


def rows_of(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """table[ids] for a table (n x d), or each run's rows for a stack of tables (K x n x d)."""
    if table.ndim == 2:
        return F.embedding(ids, table)
    return table.index_select(1, ids.reshape(-1)).view(table.shape[0], *ids.shape, table.shape[-1])


def gather_rows(table: torch.Tensor, *ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows of an embedding table (or a stack of them) for each tensor of ids (any shape), differentiable in
    the table.

    On a GPU the embedding backward is kept for one table: it sums in a fixed order, where `index_add_` uses
    atomics.
    """
    if table.requires_grad and table.device.type == "cpu":
        return _GatherRows.apply(table, *ids)
    return tuple(rows_of(table, part) for part in ids)


@dataclass
class EpochWork:
    """One run's next epoch, as its fit() asks its stack to train it (see train_together)."""

    model: torch.nn.Module
    recipe: Recipe
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    batch_size: int
    epoch: int
    warm: bool


def make_batch(tables, work: EpochWork, users, items, data: Data) -> Batch:
    """The batch of a stack of runs: `tables` are the runs' (user, item) tables, one run's or, for K runs,
    each stacked (K x n x d); the negatives are drawn once for all of them."""
    user_table, item_table = tables
    recipe, generator = work.recipe, work.generator
    negatives = negative_emb = None
    if recipe.n_negatives > 0:
        negatives = SAMPLERS[recipe.sampler](users, items, recipe.n_negatives, data.train, generator)
        item_emb, negative_emb = gather_rows(item_table, items, negatives)
    else:
        (item_emb,) = gather_rows(item_table, items)
    (user_emb,) = gather_rows(user_table, users)
    return Batch(
        users=users,
        items=items,
        user_emb=user_emb,
        item_emb=item_emb,
        negatives=negatives,
        negative_emb=negative_emb,
        user_table=user_table,
        item_table=item_table,
        train=data.train,
        train_by_item=data.train_by_item,
        # only a model's own scorer (KGCN): dot-product models are scored from the rows gathered above
        score_pairs=getattr(work.model, "score_pairs", None),
        generator=generator,
    )


def stack_tables(works: list[EpochWork]) -> tuple[torch.Tensor, torch.Tensor]:
    """One run's tables, or every run's stacked (K x n x d): one gather and one loss for all of them."""
    tables = [work.model() for work in works]
    if len(tables) == 1:
        return tables[0]
    return torch.stack([user for user, _ in tables]), torch.stack([item for _, item in tables])


@dataclass
class StackTerms:
    """A stack's terms in one epoch: each term any run has in its phase, with every run's gamma (0 where
    the run has no such term or is outside its phase: a zero gamma adds exactly nothing to that run's loss
    and gradient), and the names of the loss parts each run logs. Fixed for an epoch, so that no gamma is
    copied to a GPU per step."""

    functions: dict[str, object]
    gammas: dict[str, torch.Tensor]
    names: list[list[str]]

    @classmethod
    def of(cls, works: list[EpochWork], device) -> StackTerms:
        functions, gammas, names = {}, {}, [[] for _ in works]
        for run, work in enumerate(works):
            for term in work.recipe.terms:
                if term.phase == "all" or (term.phase == "warm") == work.warm:
                    name = f"{term.name}_{term.phase}"
                    functions[name] = term.function
                    gammas.setdefault(name, [0.0] * len(works))[run] = term.gamma
                    names[run].append(name)
        gammas = {name: torch.tensor(values, device=device) for name, values in gammas.items()}
        return cls(functions, gammas, names)


def stack_parts(works: list[EpochWork], terms: StackTerms, batch: Batch) -> dict[str, torch.Tensor]:
    """The loss parts of one batch: one run's recipe's parts, or for a stack one value per run of the
    shared base loss and of every term (gamma * (reg(users) + reg(items)) / 2, as Recipe.parts)."""
    if len(works) == 1:
        return works[0].recipe.parts(batch, works[0].warm)
    parts = works[0].recipe.loss(batch)
    for name, function in terms.functions.items():
        users, items = batch.unique_user_emb(), batch.unique_item_emb()
        parts[name] = terms.gammas[name] * ((function(users) + function(items)) / 2)
    return parts


def train_step(works: list[EpochWork], terms: StackTerms, users, items, data: Data) -> dict:
    """One optimiser step of every run of the stack on a mini-batch of (user, positive item) pairs; returns
    the loss parts, one value per run."""
    parts = stack_parts(works, terms, make_batch(stack_tables(works), works[0], users, items, data))
    loss = sum(parts.values())
    for work in works:
        work.optimizer.zero_grad(set_to_none=True)
    loss.sum().backward()  # the runs share no parameter: each one's gradient is that of its own loss
    for work in works:
        work.optimizer.step()
    # detached device tensors: reading them back per step would make a GPU wait for the host every batch
    return {name: value.detach() for name, value in parts.items()}


def train_epoch(works: list[EpochWork], data: Data) -> list[dict]:
    """One epoch of a stack of runs on the same batches and negatives (their shared random stream); returns
    for each run the mean of every loss part and of their sum (`loss`), and its share of the time."""
    first = works[0]
    start = time.perf_counter()
    for work in works:
        work.model.train()
    terms = StackTerms.of(works, data.train.indptr.device)
    totals: dict[str, torch.Tensor] = {}
    steps = 0
    for users, items in BATCHINGS[first.recipe.batching](data, first.batch_size, first.generator):
        for name, value in train_step(works, terms, users, items, data).items():
            totals[name] = totals[name] + value if name in totals else value
        steps += 1
    for work in works[1:]:  # every run's stream is where the stack's is: each run checkpoints its own
        work.generator.set_state(first.generator.get_state())
    seconds = (time.perf_counter() - start) / len(works)  # a run's share of the stack's epoch
    if len(works) == 1:
        return [epoch_means(totals, steps) | {"_seconds": seconds}]
    base = [name for name in totals if name not in terms.functions]  # the shared base loss's parts
    return [
        epoch_means({name: totals[name][run] for name in [*base, *names]}, steps) | {"_seconds": seconds}
        for run, names in enumerate(terms.names)
    ]


def epoch_means(totals: dict[str, torch.Tensor], steps: int) -> dict:
    means = {f"loss_{name}": float(total) / max(steps, 1) for name, total in totals.items()}
    return {"loss": sum(means.values())} | means


def make_optimizer(model, recipe: Recipe, settings: TrainSettings):
    """Adam with weight decay (StableRankReg) unless the recipe asks for plain SGD (DirectSpec); the
    parameters of the recipe's own modules (a contrastive projection) train with the model's."""
    lr, decay, name = settings.lr, settings.weight_decay, recipe.optimizer or "adam"
    parameters = [*model.parameters(), *(p for module in recipe.modules() for p in module.parameters())]
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, weight_decay=decay)
    if name == "adam":
        # the fused kernel updates all parameters in one pass: 6x faster than the default on a CPU
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay, fused=True)
    raise ValueError(f"unknown optimizer {name!r}; valid names: adam, sgd")


def spectral_row(user_table: torch.Tensor, item_table: torch.Tensor) -> dict:
    with torch.no_grad():
        u, i = user_table.detach().double(), item_table.detach().double()
        return {
            "user_stable_rank": float(stable_rank(u)),
            "item_stable_rank": float(stable_rank(i)),
            "user_effective_rank": float(effective_rank(u)),
            "item_effective_rank": float(effective_rank(i)),
        }


def model_scorer(model) -> Scorer:
    """Full-ranking scores of a block of users: the model's own scorer where its scores are not the dot
    products of its tables (KGCN's user-specific item representations), else those dot products."""
    if hasattr(model, "score_block"):
        return model.score_block
    return dot_scorer(*model())


def validate(model, data: Data, settings: TrainSettings) -> dict:
    with torch.no_grad():
        metrics = scored_rank_metrics(
            model_scorer(model), data.valid, [data.train], ks=[20], batch_size=settings.eval_batch_size
        )
    return {"valid_recall@20": metrics["recall@20"], "valid_ndcg@20": metrics["ndcg@20"]}


class TrainingError(RuntimeError):
    """A run that cannot go on: the loss diverged, or its checkpoint cannot be read."""


class LossDiverged(TrainingError):
    """The training loss became NaN or infinite: this run's own failure (its settings), which the other
    runs of its group do not share."""


class Checkpoint:
    """Everything needed to resume an interrupted run exactly where it stopped, written atomically."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint

    def load(self, device: str) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location=device, weights_only=False)
        except Exception as error:  # a truncated or overwritten file: torch raises many kinds
            raise TrainingError(
                f"cannot read the checkpoint {self.path} ({type(error).__name__}: {error}); it is left as it "
                "is: delete it to train this run from the start"
            ) from error
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring checkpoint %s: it was written with other settings", self.path)
            return None
        return state

    def save(self, state: dict) -> None:
        """Serialised in memory first: torch.save's own writer reports a full disk as an 'unexpected pos'
        RuntimeError, while io.write_bytes names the file and the cause (io.OutputError)."""
        buffer = BytesIO()
        torch.save(state | {"fingerprint": self.fingerprint}, buffer)
        io.write_bytes(self.path, buffer.getbuffer())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def in_warm_phase(recipe: Recipe, epoch: int, best: dict, settings: TrainSettings) -> bool:
    """The warm epochs (`Recipe.last_warm_epoch`), or (warm_until: stall) until validation stalls, at most
    that many."""
    if not recipe.has_warm_phase or best.get("warm_over") or epoch > recipe.last_warm_epoch:
        return False
    return recipe.warm_until == "epochs" or best["bad"] < settings.patience


def fit(spec: RunSpec, model, data: Data, device: str) -> Generator[EpochWork, dict, tuple[list[dict], int]]:
    """Train with early stopping on validation NDCG@20; leaves the best epoch's weights in `model`.

    A generator: it yields each epoch's training (EpochWork) to train_together, which trains the epochs of
    every run of a stack as one, and receives that epoch's loss parts; validation, early stopping and the
    checkpoint are the run's own. Returns (history, best epoch).

    Early stopping counts epochs without improvement throughout and stops after a tune-phase epoch that
    brings the count to `patience` (StableRankReg's loop). When the warm phase ends the count starts afresh,
    or with `patience_after_warm: carry` goes on, as in that loop.
    """
    settings = spec.settings
    recipe = Recipe.from_resolved(spec.recipe, spec.term_context())
    if spec.compile and compiler_available(device):
        recipe.compile()
    for module in recipe.modules():
        module.to(device)
    optimizer = make_optimizer(model, recipe, settings)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    checkpoint = Checkpoint(checkpoint_path(spec), spec.fingerprint())
    state = checkpoint.load(device)
    history: list[dict] = []
    best = {"score": -math.inf, "epoch": 0, "weights": copy.deepcopy(model.state_dict()), "bad": 0}
    if state is not None:
        model.load_state_dict(state["model"])
        for module, module_state in zip(recipe.modules(), state["recipe_modules"], strict=True):
            module.load_state_dict(module_state)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu())  # RNG states are CPU byte tensors, even for CUDA
        history, best = state["history"], state["best"]
        log.info("resuming %s from epoch %d", spec.run_dir, len(history))
    epochs = settings.epochs
    progress = tqdm(range(len(history) + 1, epochs + 1), desc=str(spec.run_dir), mininterval=2.0)
    for epoch in progress:
        if history and history[-1]["phase"] == "tune" and best["bad"] >= settings.patience:
            break  # checked here rather than after the epoch, so that a resumed run stops too
        warm = in_warm_phase(recipe, epoch, best, settings)
        if not warm and recipe.has_warm_phase and not best.get("warm_over"):
            best["warm_over"] = True
            if settings.patience_after_warm == "reset":
                best["bad"] = 0
        parts = yield EpochWork(model, recipe, optimizer, generator, settings.batch_size, epoch, warm)
        row = epoch_row(model, data, settings, parts, warm) | {"epoch": epoch}
        if not math.isfinite(row["loss"]):
            kept = (
                f"the checkpoint of epoch {len(history)} is kept ({checkpoint.path})"
                if history
                else "no epoch finished, so there is no checkpoint"
            )
            raise LossDiverged(
                f"{spec.run_dir}: the training loss is {row['loss']} in epoch {epoch}; {kept}. Lower the "
                "learning rate or check the recipe."
            )
        row["elapsed_seconds"] = (history[-1]["elapsed_seconds"] if history else 0.0) + row.pop("_wall")
        history.append(row)
        if row["valid_ndcg@20"] > best["score"]:
            best |= {
                "score": row["valid_ndcg@20"],
                "epoch": epoch,
                "weights": copy.deepcopy(model.state_dict()),
            }
            best["bad"] = 0
        else:
            best["bad"] += 1
        for group in optimizer.param_groups:
            group["lr"] *= recipe.lr_decay
        progress.set_postfix(
            loss=f"{row['loss']:.4f}", ndcg=f"{row['valid_ndcg@20']:.4f}", best=best["epoch"]
        )
        log.info(
            "epoch %d %s loss %.5f valid ndcg@20 %.5f", epoch, row["phase"], row["loss"], row["valid_ndcg@20"]
        )
        checkpoint.save(
            {
                "model": model.state_dict(),
                "recipe_modules": [module.state_dict() for module in recipe.modules()],
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "history": history,
                "best": best,
            }
        )
    if settings.restore_best:
        model.load_state_dict(best["weights"])
    return history, best["epoch"] if settings.restore_best else history[-1]["epoch"]


def epoch_row(model, data: Data, settings: TrainSettings, parts: dict, warm: bool) -> dict:
    """An epoch's row of epochs.csv from its loss parts: validation and the spectrum, and the time spent
    training (the run's share of its stack's epoch) and evaluating."""
    start = time.perf_counter()
    model.eval()
    # a diverged loss (NaN, inf) has left non-finite weights: nothing to validate, fit() stops the run
    measured = math.isfinite(parts["loss"])
    row = parts | (validate(model, data, settings) | spectral_row(*model()) if measured else {})
    trained, evaluated = row.pop("_seconds"), time.perf_counter() - start
    return row | {
        "phase": "warm" if warm else "tune",
        "epoch_seconds": trained,
        "eval_seconds": evaluated,
        "_wall": trained + evaluated,
    }


def run(spec: RunSpec, data: Data | None = None, keep_checkpoint: bool = False) -> dict:
    """Train (or fit) one (dataset, model, recipe, seed): a stack of one (run_stack). Returns its metrics."""
    (outcome,) = run_stack([spec], data, keep_checkpoint)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def run_stack(
    specs: list[RunSpec], data: Data | None = None, keep_checkpoint: bool = False
) -> list[dict | LossDiverged]:
    """Train (or fit) runs of one split, writing each one's epochs.csv, embeddings.npz, metrics.json,
    per_user.parquet and top_lists.npz. Runs of the same `stack_key` train as one stack (train_together);
    others one after another. Returns each run's metrics, or the LossDiverged of a run whose loss diverged
    (the other runs go on without it).

    `data`: the split, already loaded on its device (the runs of a group share one load, see
    specrec.groups). `keep_checkpoint`: leave each run's last checkpoint, so that a group killed later
    resumes its finished runs at once instead of training them again."""
    first = specs[0]
    set_threads(first.threads)
    keep_freed_memory()
    device = pick_device(first.settings.device)
    if data is None:
        data = load_data(first.split_dir, device)
    models = [build_model(spec, data, device) for spec in specs]
    started = time.perf_counter()
    trained = [run for run, model in enumerate(models) if model.trainable]
    fits = {run: fit(specs[run], models[run], data, device) for run in trained}
    outcomes = train_together(fits, [stack_key(spec) for spec in specs], data)
    train_seconds = (time.perf_counter() - started) / len(specs)  # a run's share of the stack's time
    results = []
    for run, (spec, model) in enumerate(zip(specs, models, strict=True)):
        outcome = outcomes[run] if model.trainable else fitted(model, data, spec.settings)
        if isinstance(outcome, LossDiverged):
            results.append(outcome)
            continue
        history, best_epoch = outcome
        metrics, per_user, top_lists = final_metrics(spec, model, data, device)
        metrics |= {
            "best_epoch": best_epoch,
            "epochs_run": len(history) if model.trainable else 0,
            "train_seconds": train_seconds,
            "flags": run_flags(spec, history, data, device) if model.trainable else [],
        }
        write_outputs(spec, model, history, metrics, per_user, top_lists)
        if not keep_checkpoint:
            checkpoint_path(spec).unlink(missing_ok=True)
        results.append(metrics)
    return results


def build_model(spec: RunSpec, data: Data, device: str):
    """The run's model, initialised from the run's seed as it would be alone."""
    check_cutoffs(spec, data)
    seed_everything(spec.seed)
    return MODELS[spec.model](
        data.split.n_users,
        data.split.n_items,
        dim=spec.settings.dim,
        init_std=spec.settings.init_std,  # a recipe may bring its paper's (StableRankReg: N(0, 1))
        train_users=data.train.pairs()[0],
        train_items=data.train.indices,
        **model_options(spec),
    ).to(device)


def fitted(model, data: Data, settings: TrainSettings) -> tuple[list[dict], int]:
    """The one history row of a model that is fitted, not trained (popularity)."""
    model.eval()
    row = {"epoch": 0, "loss": float("nan")} | validate(model, data, settings) | spectral_row(*model())
    return [row | {"epoch_seconds": 0.0, "eval_seconds": 0.0, "elapsed_seconds": 0.0}], 0


def stack_key(spec: RunSpec) -> str | None:
    """Runs with the same key train as one stack: the same split, seed, model and batches (base loss,
    sampler, negatives, batching, batch size), with a model, loss and terms that keep the runs of a stack
    apart (`stackable`). They may differ in everything else: optimiser settings (lr, weight decay, decay),
    terms (gammas, warm starts), initialisation and epochs. None: the run trains alone."""
    recipe = spec.recipe
    if not recipe:
        return None
    parts = [MODELS[spec.model], LOSSES[recipe["loss"]["name"]]]
    parts += [REGULARIZERS[term["name"]] for term in recipe["regularizers"]]
    if not all(getattr(part, "stackable", False) for part in parts):
        return None
    batches = [recipe["loss"], *(recipe.get(key) for key in ("n_negatives", "sampler", "batching"))]
    settings = spec.settings
    shared = [spec.split_dir, spec.seed, spec.model, spec.model_options, batches, settings.batch_size]
    return json.dumps([*shared, settings.dim, settings.device], sort_keys=True, default=str)


def train_together(
    fits: dict[int, Generator], keys: list[str | None], data: Data
) -> dict[int, tuple | LossDiverged]:
    """Drive the fits of several runs epoch by epoch: the runs of one stack key that are at the same epoch
    with the same random stream train that epoch as one stack (train_epoch); a run leaves the stack when
    it stops early or its epochs are done, and a run whose loss diverges leaves with its LossDiverged.
    (Runs of one key are at different points only when a killed stack resumes from checkpoints written
    one after another: each such point then trains as a stack of its own.)"""
    outcomes, waiting = {}, {}
    parent = os.getppid()  # Snakemake: should it die, an orphaned job stops after the epoch

    def advance(run: int, parts: dict | None) -> None:
        try:
            waiting[run] = fits[run].send(parts)
        except StopIteration as done:
            outcomes[run] = done.value
        except LossDiverged as error:
            outcomes[run] = error

    for run in fits:
        advance(run, None)
    while waiting:
        stacks: dict[tuple, list[int]] = {}
        for run, work in waiting.items():
            key = keys[run] or f"alone {run}"
            stacks.setdefault((key, work.epoch, bytes(work.generator.get_state().numpy())), []).append(run)
        works, waiting = waiting, {}
        for runs in stacks.values():
            for run, parts in zip(runs, train_epoch([works[run] for run in runs], data), strict=True):
                advance(run, parts)
        if os.getppid() != parent:  # checked once every run of the epoch has saved its checkpoint
            raise TrainingError(
                "the process that started this job is gone (Snakemake was stopped); each run's checkpoint of "
                "its last epoch is saved and the next run resumes from it"
            )
    return outcomes


def checkpoint_path(spec: RunSpec) -> Path:
    return (spec.checkpoint_dir or spec.run_dir) / "checkpoint.pt"


LOSS_GROWTH = 100.0  # "by orders of magnitude": the largest epoch loss this many times the first one's


def run_flags(spec: RunSpec, history: list[dict], data: Data, device: str) -> list[str]:
    """What went wrong with a run that still finished: its loss grew by orders of magnitude (a diverging
    learning rate short of NaN), or its best validation NDCG@20 is no better than the popularity baseline's
    on the same split. Each is logged as a warning (the console sees it) and recorded in metrics.json; the
    tables mark the run. Neither fails the job: the collapse baseline (positives-only alignment) is meant
    to rank no better than popularity, and a study exists to show such runs."""
    flags = []
    magnitudes = [abs(row["loss"]) for row in history]
    growth = max(magnitudes) / max(magnitudes[0], 1e-12)
    if growth >= LOSS_GROWTH:
        flags.append("loss_exploded")
        log.warning(
            "%s: the training loss grew %.3g-fold (from %.4g in epoch 1 to %.4g): the learning rate is "
            "probably too large", spec.run_dir, growth, history[0]["loss"],
            max((row["loss"] for row in history), key=abs),
        )  # fmt: skip
    popularity = MODELS["popularity"](data.split.n_users, data.split.n_items, train_items=data.train.indices)
    baseline = validate(popularity.to(device), data, spec.settings)["valid_ndcg@20"]
    best = max(row["valid_ndcg@20"] for row in history)
    if best <= baseline:
        flags.append("at_or_below_popularity")
        log.warning(
            "%s: the best validation NDCG@20 (%.4f) is no better than the popularity baseline's (%.4f)",
            spec.run_dir, best, baseline,
        )  # fmt: skip
    return flags


def check_cutoffs(spec: RunSpec, data: Data) -> None:
    """Refuse, before training, a largest K of train.ks that some test user cannot fill: the top-K lists
    hold unseen items only (a K beyond them would fail after the whole run)."""
    k = max(spec.settings.ks)
    seen = data.train.counts() + (data.valid.counts() if spec.settings.mask_valid_at_test else 0)
    tested = data.test.counts() > 0
    left = data.split.n_items - seen[tested]
    fewest = int(left.min())
    if k > fewest:
        user = int(torch.nonzero(tested).squeeze(1)[left.argmin()])
        raise ValueError(
            f"config key train.ks = {list(spec.settings.ks)}: K = {k} is more than the {fewest} unseen items "
            f"that test user {user} of {spec.dataset} has left to rank ({data.split.n_items} items in all); "
            f"set every K of train.ks to at most {fewest}"
        )


def pair_scorer(model):
    """Logits of (user, item) pairs: the model's own where it has one (KGCN), else table dot products."""
    if hasattr(model, "score_pairs"):
        return model.score_pairs
    user_table, item_table = model()
    return lambda users, items: (user_table[users] * item_table[items]).sum(-1)


def test_ctr(model, data: Data, device: str, batch_size: int | None = None, chunk: int = 65536) -> dict:
    """AUC and F1 on KGCN-style test rows: every test positive and one never-seen item per positive, drawn
    with a fixed seed so that every model and run of a split is scored on the same rows. `test_ctr` is over
    the whole set; with `batch_size`, `test_ctr_batched` is KGCN's mean over test batches."""
    generator = torch.Generator(device=device).manual_seed(CTR_SEED)
    users, items, labels = ctr_rows(data.test, [data.train, data.valid], generator)
    scorer = pair_scorer(model)
    scores = torch.cat([scorer(u, i) for u, i in zip(users.split(chunk), items.split(chunk), strict=True)])
    result = {"test_ctr": ctr_metrics(scores.float(), labels)}
    if batch_size:
        result["test_ctr_batched"] = batched_ctr_metrics(scores.float(), labels, batch_size, generator)
    return result


def model_options(spec: RunSpec) -> dict:
    """The model's constructor options; for a KG model (KGCN) also its sampled neighbourhoods: K neighbours
    per entity of the run's knowledge graph, drawn once from the run seed (KGCN's construct_adj)."""
    options = dict(spec.model_options)
    if not getattr(MODELS[spec.model], "needs_kg", False):
        return options
    if spec.kg_dir is None:
        raise ValueError(f"model {spec.model!r} needs the item knowledge graph (kg_dir)")
    kg = load_kg(spec.kg_dir)
    adj_entity, adj_relation = neighbour_sample(kg, options.pop("n_neighbours", 4), spec.seed)
    return options | {"adj_entity": adj_entity, "adj_relation": adj_relation, "n_relations": kg.n_relations}


def final_metrics(spec: RunSpec, model, data: Data, device: str) -> tuple[dict, pd.DataFrame, dict]:
    """metrics.json's content, the per-user test metrics (cold-start bins) and the test users' top-K lists
    (diversity), all from the final (restored best) weights."""
    settings = spec.settings
    with torch.no_grad():
        scorer = model_scorer(model)
        test_exclude = [data.train, data.valid] if settings.mask_valid_at_test else [data.train]
        # K = 20 always: validation, model selection, the tables and the headline read NDCG@20
        kwargs = {"ks": sorted({*settings.ks, 20}), "batch_size": settings.eval_batch_size}
        valid = scored_rank_metrics(scorer, data.valid, [data.train], **kwargs)
        test = scored_rank_metrics(scorer, data.test, test_exclude, per_user=True, **kwargs)
        per_user = pd.DataFrame({name: values.cpu().numpy() for name, values in test.pop("per_user").items()})
        users = torch.tensor(per_user["user"].to_numpy(), device=device)
        k = min(max(settings.ks), data.split.n_items)
        lists = top_k_lists_scored(scorer, users, test_exclude, k, settings.eval_batch_size)
        ctr = test_ctr(model, data, device, settings.ctr_batch_size)
    top_lists = {"user": per_user["user"].to_numpy(), "items": lists.cpu().numpy()}
    metrics = {
        "dataset": spec.dataset,
        "model": spec.model,
        "recipe": spec.recipe_name,
        "seed": spec.seed,
        "valid": valid,
        "test": test,
        **ctr,
        "split": data.split.protocol,
        "device": device,
        "provenance": provenance(device)
        | {
            # the resolved configuration of this run: everything its fingerprint covers
            "recipe": spec.recipe,
            "settings": asdict(settings),
            "model_options": dict(spec.model_options),
            "threads": spec.threads,
            "torch": torch.__version__,
            "n_users": data.split.n_users,
            "n_items": data.split.n_items,
        },
    }
    return metrics, per_user, top_lists


def write_outputs(
    spec: RunSpec, model, history: list[dict], metrics: dict, per_user: pd.DataFrame, top_lists: dict
) -> None:
    """Embeddings, the per-epoch log, per-user test metrics and top-K lists first, metrics.json last."""
    with torch.no_grad():
        user_table, item_table = model()
    io.save_npz(
        spec.run_dir / "embeddings.npz",
        user=user_table.detach().float().cpu().numpy(),
        item=item_table.detach().float().cpu().numpy(),
    )
    io.write_csv(spec.run_dir / "epochs.csv", epochs_frame(history))
    io.write_parquet(spec.run_dir / "per_user.parquet", per_user)
    io.save_npz(spec.run_dir / "top_lists.npz", **top_lists)
    io.write_json(spec.run_dir / "metrics.json", metrics)


def epochs_frame(history: list[dict]) -> pd.DataFrame:
    """The fixed columns first (the figures read them), then the phase and every loss part."""
    frame = pd.DataFrame(history)
    extra = sorted(c for c in frame.columns if c not in EPOCH_COLUMNS)
    return frame.reindex(columns=EPOCH_COLUMNS + extra)


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as arrays:
        return arrays["user"], arrays["item"]
