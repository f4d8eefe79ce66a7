"""The training loop on a small planted problem: it learns, stops early, restores the best epoch, resumes."""

import errno
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import specrec.train as train_module
from specrec import io
from specrec.recipes import resolve_recipe
from specrec.train import EPOCH_COLUMNS, RunSpec, TrainSettings, gather_rows, load_embeddings, run

USERS_64 = {"batching": "users", "batch_size": 64}
RECIPES = {
    "bpr": {"loss": "bpr", "n_negatives": 1},
    "ssm": {"loss": "ssm", "n_negatives": 8},
    "align": {"loss": "align"},
    "directau": {"loss": "align", "regularizers": {"uniformity": 1.0}},
    "directspec_plus": {"loss": "directspec_plus", "alpha": 0.5, "tau": 3.0, **USERS_64},
    "directspec_plus_adaptive": {"loss": "directspec_plus", "alpha": 0.5, "tau0": 2.5, "tau1": 3, **USERS_64},
    "directspec_sgd": {
        "loss": "directspec", "alpha": 0.5, "optimizer": "sgd", "lr": 5.0, "lr_decay": 0.99, **USERS_64
    },
}  # fmt: skip
RECIPES["bce"] = {"loss": "bce", "n_negatives": 1}
ADDONS = {
    "sr_warm": {"regularizer": "stable_rank", "gamma": 1.0, "warm_epochs": 3},
    "unif_warm": {"regularizer": "uniformity", "gamma": 0.5, "warm_epochs": 2},
    "semantic_cl": {"regularizer": "semantic_cl", "gamma": 0.5, "fields": ["genres"], "min_overlap": 1},
}


def spec(
    split_dir: Path, run_dir: Path, model="mf", recipe="bpr", checkpoint_dir=None, data=None, **settings
) -> RunSpec:
    base = {"dim": 8, "lr": 0.05, "batch_size": 128, "epochs": 12, "patience": 20, "ks": [5, 10]}
    return RunSpec(
        dataset="toy",
        model=model,
        recipe_name=recipe,
        recipe={} if recipe == "none" else resolve_recipe(recipe, RECIPES, ADDONS),
        seed=1,
        split_dir=split_dir,
        run_dir=run_dir,
        settings=TrainSettings.from_config(base | settings),
        checkpoint_dir=checkpoint_dir,
        **(data or {}),
    )


@pytest.mark.parametrize("recipe", ["bpr", "ssm"])
def test_mf_learns_the_clusters_and_beats_popularity(split_dir, tmp_path, recipe):
    mf = run(spec(split_dir, tmp_path / "mf", recipe=recipe))
    pop = run(spec(split_dir, tmp_path / "pop", model="popularity", recipe="none"))
    assert mf["test"]["ndcg@10"] > pop["test"]["ndcg@10"] + 0.1
    epochs = pd.read_csv(tmp_path / "mf" / "epochs.csv")
    assert list(epochs.columns)[: len(EPOCH_COLUMNS)] == EPOCH_COLUMNS
    assert f"loss_{recipe}" in epochs.columns and (epochs["phase"] == "tune").all()
    assert epochs["loss"].iloc[-1] < epochs["loss"].iloc[0]
    for name, value in mf["test"].items():
        if "@" in name:
            assert 0.0 <= value <= 1.0, name
    user, item = load_embeddings(tmp_path / "mf" / "embeddings.npz")
    assert user.shape == (60, 8) and item.shape == (45, 8)
    assert not (tmp_path / "mf" / "checkpoint.pt").exists()
    assert mf["test_ctr"]["auc"] > pop["test_ctr"]["auc"] and 0.0 <= mf["test_ctr"]["f1"] <= 1.0


def test_per_user_metrics_and_top_lists_match_the_means(split_dir, tmp_path):
    metrics = run(spec(split_dir, tmp_path, epochs=3))
    per_user = pd.read_parquet(tmp_path / "per_user.parquet")
    assert len(per_user) == metrics["test"]["users"]
    assert per_user["ndcg@10"].mean() == pytest.approx(metrics["test"]["ndcg@10"])
    with np.load(tmp_path / "top_lists.npz") as lists:
        assert (lists["user"] == per_user["user"].to_numpy()).all()
        assert lists["items"].shape == (len(per_user), 10)
        train = pd.read_parquet(split_dir / "train.parquet")
        seen = set(zip(train["user"], train["item"], strict=True))
        listed = zip(lists["user"], lists["items"], strict=True)
        assert not any((u, i) in seen for u, row in listed for i in row)


def test_popularity_is_rank_one(split_dir, tmp_path):
    metrics = run(spec(split_dir, tmp_path, model="popularity", recipe="none"))
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    assert len(epochs) == 1 and epochs["user_stable_rank"].iloc[0] == pytest.approx(1.0)
    assert metrics["epochs_run"] == 0


def test_early_stopping_restores_the_best_epoch(split_dir, tmp_path):
    metrics = run(spec(split_dir, tmp_path, lr=0.5, epochs=40, patience=2, ks=[10, 20]))
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    best = int(epochs["valid_ndcg@20"].idxmax())
    assert metrics["best_epoch"] == epochs["epoch"].iloc[best]
    assert len(epochs) == metrics["best_epoch"] + 2  # stopped after `patience` epochs without improvement
    assert metrics["valid"]["ndcg@20"] == pytest.approx(epochs["valid_ndcg@20"].iloc[best])


def crash_in_epoch(monkeypatch, run_spec: RunSpec, epoch: int) -> None:
    """Run until validation of `epoch` raises, as a Ctrl-C or a killed job would; then un-patch."""
    real_validate = train_module.validate
    calls = {"n": 0}

    def validate_or_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise KeyboardInterrupt("simulated crash")
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(train_module, "validate", validate_or_crash)
    with pytest.raises(KeyboardInterrupt):
        run(run_spec)
    monkeypatch.setattr(train_module, "validate", real_validate)


def test_an_interrupted_run_resumes_to_the_same_result(split_dir, tmp_path, monkeypatch):
    reference = run(spec(split_dir, tmp_path / "reference"))
    crash_in_epoch(monkeypatch, spec(split_dir, tmp_path / "resumed"), epoch=5)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = run(spec(split_dir, tmp_path / "resumed"))
    assert resumed["test"] == pytest.approx(reference["test"])
    losses = pd.read_csv(tmp_path / "resumed" / "epochs.csv")["loss"]
    assert np.allclose(losses, pd.read_csv(tmp_path / "reference" / "epochs.csv")["loss"])


def test_a_checkpoint_of_other_settings_is_not_resumed(split_dir, tmp_path, monkeypatch):
    crash_in_epoch(monkeypatch, spec(split_dir, tmp_path), epoch=4)
    assert (tmp_path / "checkpoint.pt").exists()
    metrics = run(spec(split_dir, tmp_path, lr=0.01))
    assert metrics["epochs_run"] == 12


def test_a_diverging_loss_stops_with_the_epoch_named_and_the_last_good_checkpoint_kept(
    split_dir, tmp_path, monkeypatch
):
    real_epoch = train_module.train_epoch
    calls = {"n": 0}

    def nan_in_epoch_4(*args, **kwargs):
        calls["n"] += 1
        parts = real_epoch(*args, **kwargs)
        return [part | {"loss": float("nan")} for part in parts] if calls["n"] == 4 else parts

    monkeypatch.setattr(train_module, "train_epoch", nan_in_epoch_4)
    with pytest.raises(
        train_module.TrainingError, match=r"loss is nan in epoch 4; the checkpoint of epoch 3"
    ):
        run(spec(split_dir, tmp_path))
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert len(state["history"]) == 3 and not (tmp_path / "metrics.json").exists()


def test_a_corrupt_checkpoint_is_a_clear_error_and_is_left_in_place(split_dir, tmp_path, monkeypatch):
    crash_in_epoch(monkeypatch, spec(split_dir, tmp_path), epoch=3)
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # a half-copied file
    with pytest.raises(train_module.TrainingError, match="cannot read the checkpoint .* delete it"):
        run(spec(split_dir, tmp_path))
    assert checkpoint.stat().st_size == 100  # nothing deleted behind the user's back


@pytest.mark.parametrize(
    "recipe", ["directau", "directspec_plus", "directspec_plus_adaptive", "directspec_sgd"]
)
def test_every_loss_family_trains_and_beats_popularity(split_dir, tmp_path, recipe):
    mf = run(spec(split_dir, tmp_path / "mf", recipe=recipe, lr=0.02))
    pop = run(spec(split_dir, tmp_path / "pop", model="popularity", recipe="none"))
    assert mf["test"]["ndcg@10"] > pop["test"]["ndcg@10"]


def test_warm_start_phase_and_its_regularizer_are_logged(split_dir, tmp_path):
    run(spec(split_dir, tmp_path, recipe="directau+sr_warm", epochs=6))
    epochs = pd.read_csv(tmp_path / "epochs.csv")
    assert epochs["phase"].tolist() == ["warm"] * 3 + ["tune"] * 3
    warm, tune = epochs[epochs.phase == "warm"], epochs[epochs.phase == "tune"]
    assert warm["loss_stable_rank_warm"].notna().all() and warm["loss_uniformity_tune"].isna().all()
    assert tune["loss_uniformity_tune"].notna().all() and tune["loss_stable_rank_warm"].isna().all()


def test_align_alone_collapses_and_directau_does_not(split_dir, tmp_path):
    ranks = {}
    for recipe in ("align", "directau"):
        run(spec(split_dir, tmp_path / recipe, recipe=recipe, epochs=15, patience=100, lr=0.05))
        ranks[recipe] = pd.read_csv(tmp_path / recipe / "epochs.csv")["item_stable_rank"].iloc[-1]
    assert ranks["align"] < 2 < ranks["directau"]


def test_same_seed_same_metrics(split_dir, tmp_path):
    first = run(spec(split_dir, tmp_path / "a", recipe="directau+sr_warm", epochs=5))
    second = run(spec(split_dir, tmp_path / "b", recipe="directau+sr_warm", epochs=5))
    assert first["test"] == second["test"]


def test_checkpoints_live_in_their_own_folder(split_dir, tmp_path, monkeypatch):
    crash_in_epoch(monkeypatch, spec(split_dir, tmp_path / "run", checkpoint_dir=tmp_path / "ckpt"), epoch=3)
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists() and not (
        tmp_path / "run" / "checkpoint.pt"
    ).exists()
    run(spec(split_dir, tmp_path / "run", checkpoint_dir=tmp_path / "ckpt"))
    assert not (tmp_path / "ckpt" / "checkpoint.pt").exists()


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@needs_cuda
@pytest.mark.parametrize(
    "model, recipe",
    [("mf", "bpr"), ("mf", "ssm"), ("mf", "directau+sr_warm"), ("mf", "directspec_plus_adaptive"),
     ("lightgcn", "bpr")],
)  # fmt: skip
def test_cuda_training_learns_and_repeats(split_dir, tmp_path, model, recipe):
    first = run(spec(split_dir, tmp_path / "a", model=model, recipe=recipe, device="cuda", lr=0.02))
    second = run(spec(split_dir, tmp_path / "b", model=model, recipe=recipe, device="cuda", lr=0.02))
    pop = run(spec(split_dir, tmp_path / "pop", model="popularity", recipe="none", device="cuda"))
    assert first["device"] == "cuda"
    assert first["test"]["ndcg@10"] > pop["test"]["ndcg@10"]
    assert first["test"] == pytest.approx(second["test"])


@needs_cuda
def test_cuda_run_resumes_to_the_same_result(split_dir, tmp_path, monkeypatch):
    reference = run(spec(split_dir, tmp_path / "reference", device="cuda"))
    crash_in_epoch(monkeypatch, spec(split_dir, tmp_path / "resumed", device="cuda"), epoch=5)
    resumed = run(spec(split_dir, tmp_path / "resumed", device="cuda"))
    assert resumed["test"] == pytest.approx(reference["test"])


def test_kgcn_learns_from_clicks_and_the_knowledge_graph(split_dir, item_data, tmp_path):
    run_spec = spec(split_dir, tmp_path / "kgcn", model="kgcn", recipe="bce", data=item_data, lr=0.02)
    run_spec.model_options = {"n_neighbours": 4, "n_hops": 2}
    kgcn = run(run_spec)
    pop = run(spec(split_dir, tmp_path / "pop", model="popularity", recipe="none"))
    assert kgcn["test"]["ndcg@10"] > pop["test"]["ndcg@10"]
    assert kgcn["test_ctr"]["auc"] > 0.8


def test_kgcn_without_its_graph_is_a_clear_error(split_dir, tmp_path):
    with pytest.raises(ValueError, match="knowledge graph"):
        run(spec(split_dir, tmp_path, model="kgcn", recipe="bce"))


@pytest.mark.parametrize("model", ["mf", "kgcn"])
def test_semantic_contrast_trains_and_resumes(split_dir, item_data, tmp_path, monkeypatch, model):
    def make(run_dir):
        run_spec = spec(split_dir, run_dir, model=model, recipe="bce+semantic_cl", data=item_data, epochs=6)
        run_spec.model_options = {"n_hops": 1} if model == "kgcn" else {}
        return run_spec

    reference = run(make(tmp_path / "reference"))
    epochs = pd.read_csv(tmp_path / "reference" / "epochs.csv")
    assert epochs["loss_semantic_cl_all"].notna().all()
    assert epochs["loss_semantic_cl_all"].iloc[-1] < epochs["loss_semantic_cl_all"].iloc[0]
    crash_in_epoch(monkeypatch, make(tmp_path / "resumed"), epoch=3)
    resumed = run(make(tmp_path / "resumed"))
    assert resumed["test"] == pytest.approx(reference["test"])


def test_every_run_records_where_it_came_from(split_dir, tmp_path):
    provenance = run(spec(split_dir, tmp_path, epochs=1))["provenance"]
    assert provenance["specrec"] and provenance["python"] and provenance["device"] == "cpu"
    assert (
        provenance["libraries"]["torch"] == torch.__version__.split("+")[0]
        or provenance["libraries"]["torch"]
    )
    assert provenance["libraries"]["numpy"] == np.__version__
    assert provenance["device_name"] and provenance["host"]
    assert provenance["recipe"]["loss"]["name"] == "bpr" and provenance["settings"]["epochs"] == 1
    # a checkout records its commit (and +dirty); an installed wheel records None
    commit = provenance["git_commit"]
    assert commit is None or len(commit.removesuffix("+dirty")) == 40


def test_gather_rows_has_the_gradient_of_indexing():
    """The CPU step's row gather adds repeated rows' gradients like indexing does, for 1-D and 2-D ids and
    for several id tensors sharing one table gradient."""
    torch.manual_seed(0)
    table = torch.randn(5, 4, requires_grad=True)
    ids = [torch.randint(5, (7,)), torch.randint(5, (7, 3))]
    weights = [torch.randn(7, 4), torch.randn(7, 3, 4)]
    rows = gather_rows(table, *ids)
    sum((part * w).sum() for part, w in zip(rows, weights, strict=True)).backward()
    ours = table.grad.clone()
    table.grad = None
    sum((table[i] * w).sum() for i, w in zip(ids, weights, strict=True)).backward()
    for part, i in zip(rows, ids, strict=True):
        assert torch.equal(part, table[i])
    assert torch.allclose(ours, table.grad, atol=1e-6)
    untouched = torch.bincount(torch.cat([i.flatten() for i in ids]), minlength=5) == 0
    assert ours[untouched].abs().sum() == 0
    (only_first, _) = gather_rows(table, *ids)  # an output without a gradient is skipped
    table.grad = None
    only_first.sum().backward()
    assert torch.allclose(table.grad, torch.bincount(ids[0], minlength=5).float().unsqueeze(1).expand(5, 4))


def stablerankreg_phases(curve: list[float], warm_start_epochs: int, patience: int) -> list[str]:
    """StableRankReg's training loop (train.py), reduced to its phase switch and early stopping: epochs
    count from 0, the warm phase ends when epoch > warm_start_epochs, and the counter of epochs without a
    better validation NDCG carries over into the tune phase, where it stops training."""
    phases, best, counter = [], 0.0, 0
    for epoch, ndcg in enumerate(curve):
        phase = "tune" if epoch > warm_start_epochs else "warm"
        phases.append(phase)
        if ndcg > best:
            best, counter = ndcg, 0
        else:
            counter += 1
            if phase == "tune" and counter >= patience:
                break
    return phases


def scripted_validation(monkeypatch, curve: list[float]) -> None:
    """Validation returns the next value of `curve`, so early stopping sees a chosen learning curve."""
    values = iter(curve)

    def validate(*_args, **_kwargs):
        value = next(values)
        return {"valid_recall@20": value, "valid_ndcg@20": value}

    monkeypatch.setattr(train_module, "validate", validate)


CURVES = {
    "stalls at once": [0.1] + [0.05] * 29,
    "stalls in the warm phase, recovers": [0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.2] + [0.1] * 22,
    "improves, then stalls": [0.01 * (e + 1) for e in range(12)] + [0.05] * 18,
}


@pytest.mark.parametrize("curve", CURVES.values(), ids=CURVES.keys())
def test_the_paper_warm_start_protocol_matches_stablerankregs_loop(split_dir, tmp_path, monkeypatch, curve):
    """warm_count_from: 0 and patience_after_warm: carry give the paper's loop epoch for epoch."""
    addons = ADDONS | {"paper_warm": {**ADDONS["sr_warm"], "warm_epochs": 5, "warm_count_from": 0}}
    run_spec = spec(split_dir, tmp_path, epochs=30, patience=5, patience_after_warm="carry")
    run_spec.recipe = resolve_recipe("bpr+paper_warm", RECIPES, addons)
    scripted_validation(monkeypatch, curve)
    run(run_spec)
    phases = pd.read_csv(tmp_path / "epochs.csv")["phase"].tolist()
    assert phases == stablerankreg_phases(curve, warm_start_epochs=5, patience=5)
    if curve is CURVES["stalls at once"]:
        assert len(phases) == 7  # 6 warm epochs, then one tune epoch finds the counter at its limit


def test_the_default_warm_start_regularises_warm_epochs_and_resets_patience(split_dir, tmp_path, monkeypatch):
    addons = ADDONS | {"five": {**ADDONS["sr_warm"], "warm_epochs": 5}}
    run_spec = spec(split_dir, tmp_path, epochs=30, patience=5)
    run_spec.recipe = resolve_recipe("bpr+five", RECIPES, addons)
    scripted_validation(monkeypatch, CURVES["stalls at once"])
    run(run_spec)
    # 5 warm epochs; the tune phase starts with a fresh patience of 5 epochs
    assert pd.read_csv(tmp_path / "epochs.csv")["phase"].tolist() == ["warm"] * 5 + ["tune"] * 5


def test_kgcns_batched_ctr_figure_is_recorded_beside_the_whole_set(split_dir, tmp_path):
    metrics = run(spec(split_dir, tmp_path, epochs=2, ctr_batch_size=16))
    batched, whole = metrics["test_ctr_batched"], metrics["test_ctr"]
    assert batched["batch_size"] == 16 and batched["batches"] >= 1 and set(whole) == {"auc", "f1"}
    assert 0 <= batched["auc"] <= 1 and "test_ctr_batched" not in run(
        spec(split_dir, tmp_path / "b", epochs=2)
    )


def test_a_recipe_may_cap_its_own_epochs(split_dir, tmp_path):
    """A recipe's own train settings replace the config's in one place, when the run is specified."""
    capped = resolve_recipe("capped", {"capped": {**RECIPES["bpr"], "epochs": 3, "lr": 0.02}}, ADDONS)
    run_spec = replace(spec(split_dir, tmp_path, epochs=12), recipe=capped)
    assert (run_spec.settings.epochs, run_spec.settings.lr, run_spec.settings.batch_size) == (3, 0.02, 128)
    assert run(run_spec)["epochs_run"] == 3


def test_a_loss_that_diverges_in_the_first_epoch_names_no_checkpoint(split_dir, tmp_path, monkeypatch):
    real_epoch = train_module.train_epoch
    monkeypatch.setattr(
        train_module, "train_epoch", lambda *a: [p | {"loss": math.inf} for p in real_epoch(*a)]
    )
    with pytest.raises(train_module.TrainingError) as caught:
        run(spec(split_dir, tmp_path))
    assert "in epoch 1; no epoch finished, so there is no checkpoint" in str(caught.value)
    assert "checkpoint.pt" not in str(caught.value) and not (tmp_path / "checkpoint.pt").exists()


def test_a_full_disk_while_saving_a_checkpoint_names_the_file(split_dir, tmp_path, monkeypatch):
    real_write = Path.write_bytes

    def full_disk(self, data):
        if self.name.startswith(".checkpoint.pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(io.OutputError, match=r"cannot write .*checkpoint\.pt: the disk is full"):
        run(spec(split_dir, tmp_path))


def test_a_cutoff_larger_than_a_users_unseen_items_is_refused_before_training(split_dir, tmp_path):
    with pytest.raises(ValueError) as caught:
        run(spec(split_dir, tmp_path, ks=[5, 40]))  # 45 items, each user has ~12 of them seen
    message = str(caught.value)
    assert message.startswith("config key train.ks = [5, 40]: K = 40 is more than the")
    assert "set every K of train.ks to at most" in message and not (tmp_path / "epochs.csv").exists()


def test_a_run_that_finishes_badly_is_flagged_and_warned_not_failed(split_dir, tmp_path, monkeypatch, caplog):
    real_epoch = train_module.train_epoch
    calls = {"n": 0}

    def growing(*args, **kwargs):  # the loss of a learning rate far too large, short of NaN
        calls["n"] += 1
        return [part | {"loss": 0.7 * 10 ** calls["n"]} for part in real_epoch(*args, **kwargs)]

    monkeypatch.setattr(train_module, "train_epoch", growing)
    scripted_validation(monkeypatch, [0.0] * 100)  # never better than anything: popularity scores 0 too
    with caplog.at_level("WARNING", logger="specrec.train"):
        metrics = run(spec(split_dir, tmp_path, epochs=4))
    assert metrics["flags"] == ["loss_exploded", "at_or_below_popularity"]
    assert io.read_json(tmp_path / "metrics.json")["flags"] == metrics["flags"]
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "grew 1e+03-fold" in warned and "no better than the popularity baseline's" in warned


def test_a_healthy_run_has_no_flags(split_dir, tmp_path):
    assert run(spec(split_dir, tmp_path))["flags"] == []
    assert run(spec(split_dir, tmp_path / "pop", model="popularity", recipe="none"))["flags"] == []


def test_a_job_never_takes_more_threads_than_the_cpus_it_may_run_on(monkeypatch):
    """Snakemake's threads are capped at the process's CPU binding (SLURM, taskset): more OpenMP threads
    than CPUs spin against each other (benchmarks/shared_node.py)."""
    from specrec.runtime import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
        assert set_threads(2) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
        assert set_threads(2) == 2 and torch.get_num_threads() == 2
        assert set_threads(0) == 1
    finally:
        torch.set_num_threads(before)


def test_train_compile_without_a_compiler_trains_eagerly_and_says_so(
    split_dir, tmp_path, monkeypatch, caplog
):
    from specrec import runtime
    from specrec.recipes import Recipe

    compiled = []
    monkeypatch.setattr(Recipe, "compile", lambda recipe: compiled.append(recipe))
    monkeypatch.setenv("CXX", "no-such-c++")
    runtime.compiler_available.cache_clear()
    try:
        eager = run(spec(split_dir, tmp_path / "eager", epochs=2))
        with caplog.at_level("WARNING", logger="specrec"):
            asked = run(replace(spec(split_dir, tmp_path / "asked", epochs=2), compile=True))
    finally:
        runtime.compiler_available.cache_clear()
    assert not compiled and "without a C++ compiler ('no-such-c++'" in caplog.text
    assert asked["test"] == eager["test"]
