"""The smoke DAG (config/smoke.yaml: ML-100K from the offline mirror) run through Snakemake in a folder of
its own; shared by the workflow, SLURM and fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("SPECREC_MIRROR") or ROOT.parent / "shared" / "data")


def smoke_command(workdir: Path, *args: str, configfiles: tuple[Path, ...] = ()) -> list[str]:
    """Snakemake on config/smoke.yaml (then `configfiles` on top of it) in `workdir`."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(ROOT / "config" / "smoke.yaml"), *map(str, configfiles),
        "--config", f"mirror={MIRROR}",
        *args,
    ]  # fmt: skip


def run_smoke(
    workdir: Path, *args: str, env: dict | None = None, check: bool = True, configfiles: tuple[Path, ...] = ()
):
    """Run Snakemake on the smoke config (2 cores unless a profile is given); fail with its output."""
    if "--profile" not in args:
        args = ("--cores", "2", *args)
    command = smoke_command(workdir, *args, configfiles=configfiles)
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
