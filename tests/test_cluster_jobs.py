"""How many sbatch jobs a study becomes on profiles/slurm, read from a dry run (no cluster needed).

Cluster centres ask for few, long jobs: a training job trains a group of runs with their spectra and
diversity (train.group_size), profiles/slurm puts 3 such jobs into each sbatch job (`group:` in the rules,
`group-components` in the profile), and cheap rules run on the submitting machine (`localrule`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

import pytest

from smoke import ROOT

pytestmark = pytest.mark.integration


def local_rules() -> set[str]:
    """The rules that run on the submitting machine (a dry run prints them like the others)."""
    import tempfile
    from pathlib import Path

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api, tempfile.TemporaryDirectory() as workdir:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[ROOT / "config" / "smoke.yaml"]),
            snakefile=ROOT / "Snakefile",
            workdir=Path(workdir),
        )
        return set(workflow._workflow._localrules)  # Snakemake keeps no public list of them


def dry_run_jobs(configfile: str, workdir) -> tuple[int, Counter, list[Counter], Counter]:
    """(sbatch submissions, the rules submitted alone, the rules of each group job, the local jobs' rules) of
    a dry run."""
    command = [
        sys.executable, "-m", "snakemake", "-n", "--profile", str(ROOT / "profiles" / "slurm"),
        "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(ROOT / configfile),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    alone, groups, local, local_names = Counter(), [], Counter(), local_rules()
    for line in result.stdout.splitlines():
        if "Group job" in line:
            groups.append(Counter())
        elif match := re.match(r"^    rule (\w+):", line):  # a member of the group job above
            groups[-1][match.group(1)] += 1
        elif match := re.match(r"^rule (\w+):", line):
            (local if match.group(1) in local_names else alone)[match.group(1)] += 1
    return len(groups) + sum(alone.values()), alone, groups, local


def test_paper3_is_at_most_300_long_jobs_on_the_slurm_profile(tmp_path):
    submissions, alone, groups, local = dry_run_jobs("config/experiments/paper3.yaml", tmp_path)
    assert local["run_files"] == 2925  # the study's every run, handed its files by its group's training job
    trainings = [group["train"] for group in groups if "train" in group]
    # the profile sends training to GPU nodes, so train.group_size auto is 16 runs (of one dataset, model,
    # seed and base recipe): 126 such families of 18 runs, 18 of 27, 18 of 9, and 9 popularity runs
    assert sum(trainings) == 126 * 2 + 18 * 2 + 18 * 1 + 9 == 315 and max(trainings) == 3  # 3 an sbatch job
    print(f"{submissions} sbatch jobs: {sum(trainings)} training jobs in {len(trainings)}, and {dict(alone)}")
    assert submissions <= 300, (submissions, alone)
    assert "train" not in alone
    # downloads, tables, figures and the target rules run on the submitting machine
    assert {"download", "run_files", "tuning", "summary_tables", "spectrum_figure", "all"} <= local_rules()
    assert sum(1 for group in groups if "prepare" in group) == 1  # every dataset's preparation in one job
