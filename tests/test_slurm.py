"""Integration: the smoke DAG submitted to a real one-node SLURM cluster with profiles/slurm.

Training jobs (each a group of runs, trained and analysed in one process) go to sbatch several to a job,
data preparation as one job, the rest runs on the submitting machine as marked (`localrule`); a
group with training must be given a GPU (--gpus=1; the node's GPU is a fake gres on /dev/null, so they
still train on the CPU), and the results must equal those of a local run.
Skipped where slurm-wlm and munge are not installed or cannot be started (needs root), saying why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from slurm_cluster import ClusterUnavailable, missing_tools, one_node_cluster
from smoke import MIRROR, ROOT, run_smoke

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (MIRROR / "ml-100k").is_dir(), reason=f"no dataset mirror at {MIRROR}"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"SLURM is not installed (missing {missing_tools()})"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting munged and slurmd needs root"),
]


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> tuple[Path, str, dict]:
    """The smoke DAG through profiles/slurm: (workdir, Snakemake's output, {job id: scontrol record})."""
    root = tmp_path_factory.mktemp("slurm")
    workdir = root / "work"
    try:
        cluster = one_node_cluster(root / "cluster")
        env = cluster.__enter__()
    except ClusterUnavailable as reason:
        pytest.skip(str(reason))
    try:
        # the smoke config's one training thread, as in the local run, so that the numbers compare bit for bit
        # (at one core a group runs its jobs one after another)
        result = run_smoke(
            workdir, "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--jobs", "4",
            "--cores", "1", "--set-threads", "train=1",
            "--slurm-init-seconds-before-status-checks", "1", env=env,
        )  # fmt: skip
        output = result.stdout + result.stderr
        ids = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
        jobs = {}
        for job_id in ids:
            record = subprocess.run(
                ["scontrol", "show", "job", job_id], env=env, capture_output=True, text=True
            )
            jobs[job_id] = record.stdout
    finally:
        cluster.__exit__(None, None, None)
    return workdir, output, jobs


def local_rules(output: str) -> set[str]:
    return set(re.findall(r"^localrule (\w+):", output, flags=re.MULTILINE))


def test_runs_went_to_sbatch_in_groups_and_cheap_rules_ran_locally(slurm_run):
    _, output, jobs = slurm_run
    groups = re.findall(r"Group job (\w+)", output)
    alone = re.findall(r"^rule (\w+):", output, flags=re.MULTILINE)  # group members are indented
    assert len(jobs) == len(groups) + len(alone)  # one SLURM job per group job or lone job
    # the six runs are five training jobs (the two SSM grid points one group), three to an sbatch job
    assert sorted(groups) == ["data", "run", "run"] and alone == ["encode_text"]
    members = re.findall(r"^    rule (\w+):", output, flags=re.MULTILINE)
    assert members.count("train") == 5
    assert {"all", "download", "run_files", "tuning", "summary_tables", "overview"} <= local_rules(output)
    for record in jobs.values():
        assert "JobState=COMPLETED" in record and "ExitCode=0:0" in record


def test_the_training_group_was_given_a_gpu(slurm_run):
    workdir, _, jobs = slurm_run
    trains = {job_id: record for job_id, record in jobs.items() if "Comment=rule_run_" in record}
    assert len(trains) == 2, "not two sbatch jobs of training jobs among the SLURM jobs"
    for record in trains.values():
        assert re.search(r"TresPerJob=gres:gpu:1|TresPerJob=gres/gpu:1|gres/gpu=1", record), record
        assert re.search(r"\bNumCPUs=2\b", record), record  # the profile's cpus_per_gpu: what the job uses
    for metrics_file in (workdir / "results" / "runs").rglob("metrics.json"):
        slurm = json.loads(metrics_file.read_text())["provenance"]["slurm"]
        assert slurm["job_id"] in trains and slurm["gpus"] == "1", metrics_file


def test_results_equal_a_local_run(slurm_run, smoke_workdir):
    workdir, _, _ = slurm_run
    files = sorted((smoke_workdir / "results" / "runs").rglob("metrics.json"))
    assert files
    for local_file in files:
        remote_file = workdir / local_file.relative_to(smoke_workdir)
        local, remote = json.loads(local_file.read_text()), json.loads(remote_file.read_text())
        assert remote["test"] == pytest.approx(local["test"], abs=1e-9), local_file
        assert remote["valid"] == pytest.approx(local["valid"], abs=1e-9), local_file
    for table in ("results.csv", "tuning.csv"):
        local = (smoke_workdir / "results" / "tables" / table).read_text().splitlines()
        remote = (workdir / "results" / "tables" / table).read_text().splitlines()
        assert local[0] == remote[0] and len(local) == len(remote)
