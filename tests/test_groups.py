"""A group of runs trained in one process gives every run the files it has alone, and resumes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import specrec.train as train_module
from specrec.groups import RUN_FILES, GroupJob, analyse, group_runs, train_group
from specrec.train import run
from test_train import spec

MEMBERS = {  # one run of every recipe family, and one grid point and one add-on run of BPR
    "bpr": {},
    "bpr~lr=0.01": {"lr": 0.01},
    "bpr+sr_warm": {},
    "ssm": {},
    "directau": {},
    "directspec_plus": {},
    "bce": {},
}
TIMES = ["epoch_seconds", "eval_seconds", "elapsed_seconds"]


def group_job(split_dir: Path, folder: Path, item_data: dict, model: str, members=MEMBERS, **settings):
    runs = []
    for name, own in members.items():
        recipe = name.partition("~")[0]
        run_spec = spec(split_dir, folder / name, model=model, recipe=recipe, epochs=6, **(settings | own))
        run_spec.recipe_name, run_spec.checkpoint_dir = name, folder / "checkpoints" / name
        runs.append(run_spec)
    return GroupJob(
        runs, split_dir / "test.parquet", split_dir / "train.parquet", item_data["item_meta"],
        item_data["text_embeddings"], [5, 10],
    )  # fmt: skip


def alone(job: GroupJob, name: str, folder: Path):
    """The same run as its own job would train it: its own load of the split, nothing before it."""
    run_spec = replace(
        next(r for r in job.runs if r.recipe_name == name), run_dir=folder, checkpoint_dir=None
    )
    run(run_spec)
    analyse(job, run_spec)


def same_files(group_dir: Path, alone_dir: Path) -> None:
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


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["mf", "lightgcn"])
def test_a_run_trained_in_a_group_equals_the_run_alone(split_dir, item_data, tmp_path, model, device):  # noqa: F811
    job = group_job(split_dir, tmp_path / "group", item_data, model, device=device)
    train_group(job)
    for name in MEMBERS:
        alone(job, name, tmp_path / "alone" / name)
        same_files(tmp_path / "group" / name, tmp_path / "alone" / name)
        assert sorted(p.name for p in (tmp_path / "group" / name).iterdir()) == sorted(RUN_FILES)
    assert not any((tmp_path / "group" / "checkpoints").rglob("checkpoint.pt"))  # the group is written


def test_a_killed_group_resumes_its_finished_runs_without_training_them(
    split_dir,
    item_data,
    tmp_path,
    monkeypatch,  # noqa: F811
):
    members = {name: MEMBERS[name] for name in ("bpr", "bpr~lr=0.01", "bpr+sr_warm")}
    reference = group_job(split_dir, tmp_path / "reference", item_data, "mf", members)
    train_group(reference)
    epochs = {"n": 0}
    real_epoch = train_module.train_epoch

    def count_or_crash(*args, **kwargs):
        epochs["n"] += 1
        if epochs["n"] == 6 + 3:  # the second run's third epoch: the first run is written
            raise KeyboardInterrupt("simulated kill")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", count_or_crash)
    job = group_job(split_dir, tmp_path / "group", item_data, "mf", members)
    with pytest.raises(KeyboardInterrupt):
        train_group(job)
    assert (tmp_path / "group" / "checkpoints" / "bpr" / "checkpoint.pt").exists()  # kept for the resume
    epochs["n"] = 100
    train_group(job)
    assert epochs["n"] == 100 + 4 + 6  # the first run not trained again, the second from its checkpoint
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


def test_a_run_whose_loss_diverges_fails_alone_and_the_group_goes_on(
    split_dir, item_data, tmp_path, monkeypatch
):
    members = {name: MEMBERS[name] for name in ("bpr~lr=0.01", "bpr", "ssm")}
    real_epoch = train_module.train_epoch

    epochs_at_lr = {}

    def nan_at_lr_001_in_epoch_3(model, recipe, optimizer, *args, **kwargs):
        parts = real_epoch(model, recipe, optimizer, *args, **kwargs)
        lr = optimizer.param_groups[0]["lr"]
        epochs_at_lr[lr] = epochs_at_lr.get(lr, 0) + 1
        return parts | {"loss": float("nan")} if lr == 0.01 and epochs_at_lr[lr] == 3 else parts

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
