"""A group of runs trained in one process gives every run the files it has alone, and resumes; the runs
that train as one stack give them within float tolerance."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import specrec.train as train_module
from specrec.groups import (
    GROUP_SIZES,
    RUN_FILES,
    GroupJob,
    analyse,
    group_runs,
    stacking,
    stacks,
    train_group,
)
from specrec.groups import group_size as group_size_of
from specrec.losses import Batch
from specrec.recipes import Recipe
from specrec.runtime import compiler_available
from specrec.train import run
from test_train import spec

MEMBERS = {  # every recipe family; each stackable one with grid points and add-on runs (a stack)
    "bpr": {},
    "bpr~lr=0.01": {"lr": 0.01},
    "bpr+sr_warm": {},
    "bpr~weight_decay=0.01": {"weight_decay": 0.01},
    "ssm": {},
    "ssm+sr_warm~lr=0.01": {"lr": 0.01},
    "directau": {},
    "directau+unif_warm~lr=0.01": {"lr": 0.01},
    "bce": {},
    "bce+sr_warm": {},
    "directspec_plus": {},  # a loss over the whole batch: trains alone
}
STACKS = [
    ["bpr", "bpr~lr=0.01", "bpr+sr_warm", "bpr~weight_decay=0.01"],
    ["ssm", "ssm+sr_warm~lr=0.01"],
    ["directau", "directau+unif_warm~lr=0.01"],
    ["bce", "bce+sr_warm"],
    ["directspec_plus"],
]
TIMES = ["epoch_seconds", "eval_seconds", "elapsed_seconds"]


def group_job(
    split_dir: Path, folder: Path, item_data: dict, model: str, members=MEMBERS, stack="always", **settings
):
    runs = []
    for name, own in members.items():
        recipe = name.partition("~")[0]
        options = {"epochs": 6} | settings | own
        run_spec = spec(split_dir, folder / name, model=model, recipe=recipe, **options)
        run_spec.recipe_name, run_spec.checkpoint_dir = name, folder / "checkpoints" / name
        runs.append(run_spec)
    return GroupJob(
        runs, split_dir / "test.parquet", split_dir / "train.parquet", item_data["item_meta"],
        item_data["text_embeddings"], [5, 10], stack,
    )  # fmt: skip


def alone(job: GroupJob, name: str, folder: Path, **changes):
    """The same run as its own job would train it: its own load of the split, nothing before it."""
    run_spec = replace(
        next(r for r in job.runs if r.recipe_name == name), run_dir=folder, checkpoint_dir=None, **changes
    )
    run(run_spec)
    analyse(job, run_spec)


def same_files(group_dir: Path, alone_dir: Path) -> None:
    """Every file of the run equal bit for bit, timings and provenance aside."""
    epochs = [pd.read_csv(d / "epochs.csv").drop(columns=TIMES) for d in (group_dir, alone_dir)]
    pd.testing.assert_frame_equal(*epochs, check_exact=True)
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (group_dir, alone_dir)]
    for record in metrics:
        del record["train_seconds"], record["provenance"]
    assert metrics[0] == metrics[1]
    for name in ("embeddings.npz", "top_lists.npz"):
        with np.load(group_dir / name) as grouped, np.load(alone_dir / name) as single:
            assert all(np.array_equal(grouped[key], single[key]) for key in single.files), name
    per_user = [pd.read_parquet(d / "per_user.parquet") for d in (group_dir, alone_dir)]
    pd.testing.assert_frame_equal(*per_user)
    for name in ("spectrum.json", "diversity.json", "activity.csv"):
        assert (group_dir / name).read_text() == (alone_dir / name).read_text(), name


RTOL = 1e-4  # the embeddings, losses and spectra of a stacked run against the run alone (float rounding)
RANK_ATOL = 5e-3  # its ranking metrics: rounding may swap near-tied items in a user's ranking


def close_files(group_dir: Path, alone_dir: Path) -> None:
    """A stacked run's files against the run alone: the same epochs and settings, the embeddings, losses and
    spectrum within float rounding, the ranking metrics within a few swapped near-ties. (Its top lists and
    per-user files come from these embeddings through the same code as the run alone's.)"""
    epochs = [pd.read_csv(d / "epochs.csv").drop(columns=TIMES) for d in (group_dir, alone_dir)]
    ranking = [column for column in epochs[1] if column.startswith("valid_")]
    close = {"check_exact": False, "rtol": RTOL, "atol": 1e-6}
    pd.testing.assert_frame_equal(*(frame.drop(columns=ranking) for frame in epochs), **close)
    pd.testing.assert_frame_equal(*(frame[ranking] for frame in epochs), check_exact=False, atol=RANK_ATOL)
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (group_dir, alone_dir)]
    for record in metrics:
        del record["train_seconds"], record["provenance"]
    assert_close(*metrics, atol=RANK_ATOL)
    with np.load(group_dir / "embeddings.npz") as grouped, np.load(alone_dir / "embeddings.npz") as single:
        for key in single.files:
            np.testing.assert_allclose(grouped[key], single[key], rtol=RTOL, atol=1e-5)
    spectra = [json.loads((d / "spectrum.json").read_text()) for d in (group_dir, alone_dir)]
    assert_close(*spectra, rtol=RTOL)


def assert_close(got, expected, rtol: float = 0.0, atol: float = 0.0, where: str = "") -> None:
    """Nested JSON values equal, numbers within rtol and atol."""
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key in expected:
            assert_close(got[key], expected[key], rtol, atol, f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for index, (one, other) in enumerate(zip(got, expected, strict=True)):
            assert_close(one, other, rtol, atol, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=rtol, abs=atol, nan_ok=True), where
    else:
        assert got == expected, where


NEEDS_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@pytest.mark.parametrize(
    ("device", "stack"),
    [("cpu", "always"), ("cpu", "auto"), pytest.param("cuda", "auto", marks=NEEDS_GPU)],
)
@pytest.mark.parametrize("model", ["mf", "lightgcn"])
def test_a_run_trained_in_a_group_equals_the_run_alone(split_dir, item_data, tmp_path, model, device, stack):  # noqa: F811
    # patience 2 in 8 epochs: some runs of a stack stop early and leave it, the others go on
    settings = {"device": device, "epochs": 8, "patience": 2}
    job = group_job(split_dir, tmp_path / "group", item_data, model, stack=stack, **settings)
    assert [[run.recipe_name for run in stack] for stack in stacks(job.runs)] == STACKS
    stacked = stacking(stack, device)  # auto: on a GPU only
    train_group(job)
    for names in STACKS:
        for name in names:
            alone(job, name, tmp_path / "alone" / name)
            # a run alone runs the very same operations; a stack's batched ones may round apart
            compare = close_files if stacked and len(names) > 1 else same_files
            compare(tmp_path / "group" / name, tmp_path / "alone" / name)
            assert sorted(p.name for p in (tmp_path / "group" / name).iterdir()) == sorted(RUN_FILES)
    assert not any((tmp_path / "group" / "checkpoints").rglob("checkpoint.pt"))  # the group is written
    epochs_run = {name: json.loads((tmp_path / "group" / name / "metrics.json").read_text())["epochs_run"]
                  for name in STACKS[0]}  # fmt: skip
    assert len(set(epochs_run.values())) > 1, epochs_run  # a run left its stack before the others


def test_stacking_is_on_a_gpu_unless_the_config_says_otherwise():
    assert [stacking(choice, "cpu") for choice in ("auto", "always", "never")] == [False, True, False]
    assert [stacking(choice, "cuda:1") for choice in ("auto", "always", "never")] == [True, True, False]
    with pytest.raises(ValueError, match="train.stack = 'yes': valid values are auto, always, never"):
        stacking("yes", "cpu")


def forget_compiled() -> None:
    """Dynamo's caches and counts as in a fresh process (reset() keeps the counts of earlier tests)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NEEDS_GPU)])
def test_compiled_losses_and_regularisers_train_what_the_eager_ones_train(
    split_dir, item_data, tmp_path, device
):  # noqa: F811
    if not compiler_available(device):
        pytest.skip(f"torch.compile cannot build kernels for {device} here")
    members = {name: MEMBERS[name] for name in ("bpr", "bpr+sr_warm", "directau+unif_warm~lr=0.01")}
    members["directspec_plus_adaptive"] = {}  # its temperatures come from a sparse product, left eager
    job = group_job(split_dir, tmp_path / "group", item_data, "mf", members, epochs=4, device=device)
    job.runs = [replace(run_spec, compile=True) for run_spec in job.runs]
    forget_compiled()
    train_group(job)  # a stack of two and two runs alone
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs >= 5, graphs  # each loss and regulariser went through the compiler
    breaks = torch._dynamo.utils.counters["graph_break"]
    assert all("torch.compiler.disable" in reason for reason in breaks), list(breaks)
    for name in members:
        alone(job, name, tmp_path / "eager" / name, compile=False)
        close_files(tmp_path / "group" / name, tmp_path / "eager" / name)


@pytest.mark.skipif(not compiler_available("cpu"), reason="torch.compile needs a C++ compiler")
def test_a_group_of_more_runs_than_dynamos_recompile_limit_compiles_their_loss_once_or_twice():
    # every run builds and compiles its own loss; their values differ (a temperature grid): a graph per run
    # would reach Dynamo's limit of 8 per function, and the runs past it would train eagerly
    runs = torch._dynamo.config.recompile_limit + 2
    forget_compiled()
    generator = torch.Generator().manual_seed(0)
    users, items, negatives = (
        torch.randn(shape, generator=generator) for shape in ((16, 4), (16, 4), (16, 3, 4))
    )
    batch = Batch(torch.arange(16), torch.arange(16), users, items, None, negatives, users, items)
    for run_number in range(runs):
        recipe = Recipe.from_resolved({"loss": {"name": "ssm", "temperature": 0.1 * (run_number + 1)},
                                       "regularizers": [], "n_negatives": 3})  # fmt: skip
        eager = recipe.loss(batch)["ssm"]
        recipe.compile()
        torch.testing.assert_close(recipe.loss(batch)["ssm"], eager)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 2


def test_a_killed_group_resumes_its_finished_runs_without_training_them_and_its_stack_from_checkpoints(
    split_dir,
    item_data,
    tmp_path,
    monkeypatch,  # noqa: F811
):
    members = {name: MEMBERS[name] for name in ("directspec_plus", "bpr", "bpr~lr=0.01", "bpr+sr_warm")}
    reference = group_job(split_dir, tmp_path / "reference", item_data, "mf", members)
    train_group(reference)
    epochs = {"n": 0}
    real_epoch = train_module.train_epoch

    def count_or_crash(*args, **kwargs):
        epochs["n"] += 1
        if epochs["n"] == 6 + 3:  # the stack's third epoch: the run alone before it is written
            raise KeyboardInterrupt("simulated kill")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", count_or_crash)
    job = group_job(split_dir, tmp_path / "group", item_data, "mf", members)
    with pytest.raises(KeyboardInterrupt):
        train_group(job)
    for name in members:  # kept for the resume
        assert (tmp_path / "group" / "checkpoints" / name / "checkpoint.pt").exists()
    epochs["n"] = 100
    train_group(job)
    assert epochs["n"] == 100 + 4  # the first run not trained again, the stack's epochs 3 to 6 as one
    for name in members:
        same_files(tmp_path / "group" / name, tmp_path / "reference" / name)


def test_runs_are_grouped_by_dataset_model_seed_and_base_recipe():
    names = ["bpr~lr=0.1", "bpr~lr=0.01", "bpr+sr_warm~lr=0.1", "bpr+sr_warm~lr=0.01", "ssm", "none"]
    runs = [
        {"dataset": "d", "model": "mf", "recipe": name, "seed": seed} for seed in (1, 2) for name in names
    ]
    groups = group_runs(runs, size=3)
    assert groups.members("d", "mf", "bpr.g0", 1) == ["bpr~lr=0.1", "bpr~lr=0.01", "bpr+sr_warm~lr=0.1"]
    assert groups.members("d", "mf", "bpr.g1", 2) == ["bpr+sr_warm~lr=0.01"]
    assert groups.group("d", "mf", "ssm", 2) == "ssm.g0" and groups.members("d", "mf", "ssm.g0", 2) == ["ssm"]
    assert len(groups.members_of) == 2 * 4
    # no group name has a comma: Snakemake's job arguments on a cluster (--target-jobs) split at commas
    grid = [{"dataset": "d", "model": "mf", "recipe": "bpr~lr=0.1,weight_decay=0", "seed": 1}]
    assert "," not in group_runs(grid, size=1).group("d", "mf", "bpr~lr=0.1,weight_decay=0", 1)
    # a run the config does not list is a group of one
    assert groups.group("d", "mf", "bpr~lr=1", 1) == "bpr~lr=1"
    assert groups.members("d", "mf", "bpr~lr=1", 1) == ["bpr~lr=1"]
    with pytest.raises(ValueError, match="train.group_size = 0"):
        group_runs(runs, size=0)


def test_group_size_auto_is_small_on_a_cpu_and_large_on_a_gpu():
    def size(group_size="auto", device="auto", gpu=0):
        return group_size_of({"group_size": group_size, "device": device}, {"gpu": gpu})

    assert size() == GROUP_SIZES["cpu"] == 4 and size(device="cpu", gpu=1) == 4
    assert size(gpu=1) == size(device="cuda") == size(device="cuda:1") == GROUP_SIZES["gpu"] == 16
    assert size(group_size=2, gpu=1) == 2 and size(group_size="3") == 3


def test_a_run_whose_loss_diverges_fails_alone_and_the_group_goes_on(
    split_dir, item_data, tmp_path, monkeypatch
):
    members = {name: MEMBERS[name] for name in ("bpr~lr=0.01", "bpr", "ssm")}
    real_epoch = train_module.train_epoch

    epochs_at_lr = {}

    def nan_at_lr_001_in_epoch_3(works, data):
        parts = real_epoch(works, data)
        for number, work in enumerate(works):
            lr = work.optimizer.param_groups[0]["lr"]
            epochs_at_lr[lr] = epochs_at_lr.get(lr, 0) + 1
            if lr == 0.01 and epochs_at_lr[lr] == 3:  # in a stack with bpr: that one goes on alone
                parts[number] |= {"loss": float("nan")}
        return parts

    monkeypatch.setattr(train_module, "train_epoch", nan_at_lr_001_in_epoch_3)
    job = group_job(split_dir, tmp_path / "group", item_data, "mf", members)
    assert len(train_group(job)) == 2
    failed = tmp_path / "group" / "bpr~lr=0.01"
    assert "LossDiverged" in (failed / "failed.txt").read_text() and not (failed / "metrics.json").exists()
    assert (
        tmp_path / "group" / "checkpoints" / "bpr~lr=0.01" / "checkpoint.pt"
    ).exists()  # its last good epoch
    for name in ("bpr", "ssm"):
        assert sorted(p.name for p in (tmp_path / "group" / name).iterdir()) == sorted(RUN_FILES)
        assert not (tmp_path / "group" / "checkpoints" / name / "checkpoint.pt").exists()
