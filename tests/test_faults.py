"""Integration: the faults a cluster brings, on the smoke DAG. A training job killed with SIGKILL resumes
from its checkpoint to the same metrics; Snakemake killed mid-run leaves nothing half-written and a rerun
completes; a diverging loss fails only its own run under --keep-going.

Each test starts from a copy of the prepared smoke data (the session's local smoke run), so only training
and what follows it runs again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from smoke import MIRROR, ROOT, run_smoke, smoke_command

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (MIRROR / "ml-100k").is_dir(), reason=f"no dataset mirror at {MIRROR}"),
]

BPR = "results/runs/ml-100k/mf/bpr/seed7"
CHECKPOINT = "results/checkpoints/ml-100k/mf/bpr/seed7/checkpoint.pt"


def prepared_copy(smoke_workdir: Path, target: Path) -> Path:
    """A new working folder holding the smoke run's prepared data (times kept, so nothing reruns)."""
    data = smoke_workdir / "results" / "data"
    shutil.copytree(data, target / "results" / "data", copy_function=shutil.copy2)
    return target


def wait_for(condition, timeout: float = 300, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def train_processes(workdir: Path) -> list[int]:
    """PIDs of the training scripts Snakemake runs in `workdir` (they live in .snakemake/scripts)."""
    pattern = f"{workdir}/.snakemake/scripts/.*train"
    listing = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(pid) for pid in listing.stdout.split()]


def test_a_sigkilled_training_job_resumes_to_the_same_metrics(smoke_workdir, tmp_path):
    workdir = prepared_copy(smoke_workdir, tmp_path)
    command = smoke_command(workdir, "--cores", "1", "--", f"{BPR}/metrics.json")
    job = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # the first checkpoint is written after epoch 1: the job is then in epoch 2
    wait_for(lambda: (workdir / CHECKPOINT).exists(), what="the first checkpoint")
    for pid in train_processes(workdir):
        os.kill(pid, signal.SIGKILL)
    output = job.communicate(timeout=300)[0]
    assert job.returncode != 0 and not (workdir / BPR / "metrics.json").exists(), output[-2000:]
    assert (workdir / CHECKPOINT).exists()  # outside the outputs: Snakemake's clean-up keeps it

    run_smoke(workdir, "--", f"{BPR}/metrics.json")
    log = (workdir / "results/logs/train/ml-100k/mf_bpr.g0_seed7.log").read_text()
    assert "resuming" in log and "from epoch" in log
    resumed = json.loads((workdir / BPR / "metrics.json").read_text())
    reference = json.loads((smoke_workdir / BPR / "metrics.json").read_text())
    assert resumed["test"] == pytest.approx(reference["test"], abs=1e-9)
    assert resumed["best_epoch"] == reference["best_epoch"] and not (workdir / CHECKPOINT).exists()


def test_a_killed_snakemake_leaves_nothing_half_written_and_a_rerun_completes(smoke_workdir, tmp_path):
    workdir = prepared_copy(smoke_workdir, tmp_path)
    snakemake = subprocess.Popen(
        smoke_command(workdir, "--cores", "2"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: (workdir / CHECKPOINT).exists(), what="a training job under way")
    snakemake.send_signal(signal.SIGKILL)
    snakemake.wait()
    # the orphaned training jobs notice at their next epoch and stop, checkpoint saved
    wait_for(lambda: not train_processes(workdir), timeout=120, what="the orphaned jobs to stop")
    leftovers = [p for p in (workdir / "results").rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    for metrics in (workdir / "results" / "runs").rglob("metrics.json"):
        json.loads(metrics.read_text())  # whatever was written is whole

    run_smoke(workdir, "--unlock")  # a killed Snakemake leaves its lock behind
    run_smoke(workdir)
    assert (workdir / "results" / "overview.html").exists()
    for metrics in (smoke_workdir / "results" / "runs").rglob("metrics.json"):
        again = json.loads((workdir / metrics.relative_to(smoke_workdir)).read_text())
        assert again["test"] == pytest.approx(json.loads(metrics.read_text())["test"], abs=1e-9), metrics


def test_a_diverging_loss_fails_its_own_run_and_keep_going_finishes_the_rest(smoke_workdir, tmp_path):
    workdir = prepared_copy(smoke_workdir, tmp_path)
    # a sampled softmax at temperature 1e-45: the logits overflow to inf and the loss is NaN at once; at
    # temperature 1 the same recipe trains, in the same group (one training job for both)
    exploding = tmp_path / "exploding.yaml"
    exploding.write_text(
        "recipes: {exploding: {loss: ssm, n_negatives: 8, sampler: shared}}\n"
        "tuning: {grids: {exploding: {temperature: [1.0e-45, 1.0]}}}\n"
        "runs: {mf: [bpr, exploding], popularity: [none], kgcn: []}\n"
    )
    runs = "results/runs/ml-100k/mf/exploding~temperature={}/seed7/spectrum.json"
    targets = [f"{BPR}/spectrum.json", runs.format("1e-45"), runs.format("1")]
    result = run_smoke(workdir, "--keep-going", "--", *targets, configfiles=(exploding,), check=False)
    output = result.stdout + result.stderr
    assert (
        result.returncode != 0 and "Error in rule run_files" in output and "Error in rule train" not in output
    )
    log = (workdir / "results/logs/train/ml-100k/mf_exploding.g0_seed7.log").read_text()
    assert "LossDiverged" in log and "in epoch 1" in log and ("loss is nan" in log or "loss is inf" in log)
    assert "LossDiverged" in output  # the failed run's own job says why
    assert (workdir / BPR / "spectrum.json").exists()  # the rest of the DAG went on
    assert (workdir / runs.format("1")).exists()  # and so did the healthy run of the same group
    assert not (workdir / runs.format("1e-45")).parent.joinpath("metrics.json").exists()


def test_a_run_file_gone_from_a_finished_study_is_made_again(smoke_workdir, tmp_path):
    """A forced rerun killed after Snakemake deleted the old outputs leaves a finished-looking study with a
    run's files missing: the plain command notices and retrains that run (and what depends on it)."""
    workdir = tmp_path / "study"
    shutil.copytree(smoke_workdir / "results", workdir / "results", copy_function=shutil.copy2)
    shutil.copytree(smoke_workdir / ".snakemake", workdir / ".snakemake", copy_function=shutil.copy2)
    for name in ("metrics.json", "epochs.csv", "embeddings.npz"):
        (workdir / BPR / name).unlink()
    plan = run_smoke(workdir, "--dry-run", "--quiet", "rules")
    table = plan.stdout + plan.stderr
    assert "Nothing to be done" not in table
    assert re.search(r"^train\s+1$", table, re.MULTILINE) and re.search(r"^summary_tables\s+1$", table, re.M)
