"""Process-level settings shared by every stage: device choice, threads, seeds, logging."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import random
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch


def pick_device(device: str = "auto") -> str:
    """'auto' -> cuda when available, else mps, else cpu; an explicit device passes through."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def set_threads(threads: int) -> int:
    """Use the cores Snakemake gave the job, but never more threads than CPUs this process may run on (a
    SLURM or `taskset` CPU binding): torch's OpenMP threads spin while they wait, so two 2-thread trainings
    on 2 CPUs run 17x slower per epoch, where two 1-thread ones lose nothing (benchmarks/RESULTS.md, "A shared
    node"). Returns the number of threads set."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, min(int(threads), available))
    torch.set_num_threads(threads)
    return threads


@functools.cache
def compiler_available(device: str) -> bool:
    """Whether torch.compile can build kernels for `device`: a C++ compiler for a CPU (inductor writes C++),
    Triton for a GPU. Where it cannot, training stays eager and says so once (`train.compile`)."""
    if device.startswith("cuda"):
        from torch.utils._triton import has_triton

        found, needs = has_triton(), "Triton (pip install triton)"
    else:
        compiler = os.environ.get("CXX", "c++")
        found = shutil.which(compiler) is not None
        needs = f"a C++ compiler ({compiler!r}: set CXX or install g++)"
    if not found:
        logging.getLogger("specrec").warning(
            "train.compile is on, but torch.compile cannot build kernels without %s: training is eager", needs
        )
    return found


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for the next allocation instead of returning it to the system.

    A training step frees and reallocates tables of the same size every step (LightGCN's smoothed tables,
    18 MB each on Gowalla); by default glibc maps large blocks afresh and trims the heap, so every step pays
    ~16,000 page faults zeroing new pages (about 15-25 % of a LightGCN step on 2 CPU cores). Blocks up to
    32 MB (glibc's ceiling) now come from the heap, which is trimmed only above 1 GB of free memory. Returns
    False where the C library is not glibc (nothing is changed there).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    settings = ((M_MMAP_THRESHOLD, 32 * 2**20), (M_TRIM_THRESHOLD, 2**30), (M_TOP_PAD, 64 * 2**20))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def log_to(path: str | None = None) -> logging.Logger:
    """Send stderr (progress bars, warnings) and log records to a rule's log file, line-buffered; warnings
    and errors also reach the console Snakemake runs in (the job's own stderr), so that what a user must
    know (skipped raw lines, a run that went wrong) is not only in a log file."""
    console = sys.stderr
    if path:
        sys.stderr = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115  (lives as long as the job)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if path:
        loud = logging.StreamHandler(console)
        loud.setLevel(logging.WARNING)
        loud.setFormatter(logging.Formatter(f"%(levelname)s (log: {path}) %(name)s: %(message)s"))
        logging.getLogger().addHandler(loud)
    return logging.getLogger("specrec")


LIBRARIES = ("torch", "numpy", "pandas", "scipy", "pyarrow", "snakemake", "sentence-transformers")


def git_commit(directory: Path) -> str | None:
    """The commit of the checkout `directory` lies in, with `+dirty` for uncommitted changes (None when it is
    not a git checkout, e.g. an installed wheel)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def device_name(device: str) -> str:
    """What the run ran on: the GPU's name, or the CPU model."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: str) -> dict:
    """Where a result came from: package version and git commit, Python and library versions, the device
    and the host (recorded in every run's metrics.json)."""
    import specrec

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "specrec": specrec.__version__,
        "git_commit": git_commit(Path(specrec.__file__).parent),
        "python": platform.python_version(),
        "libraries": versions,
        "device": device,
        "device_name": device_name(device),
        "host": platform.node(),
        "slurm": slurm_job(),
    }


def slurm_job() -> dict | None:
    """The SLURM job a run executed in (None outside one): id, partition, node and the GPUs it was given."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    keys = {"job_id": "SLURM_JOB_ID", "partition": "SLURM_JOB_PARTITION", "node": "SLURMD_NODENAME",
            "gpus": "SLURM_GPUS_ON_NODE", "cpus": "SLURM_CPUS_ON_NODE"}  # fmt: skip
    return {key: os.environ.get(variable) for key, variable in keys.items()}
