"""Process-level settings shared by every stage: device choice, threads, seeds, logging."""

from __future__ import annotations

import logging
import random
import sys

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


def set_threads(threads: int) -> None:
    """Use exactly the cores Snakemake gave the job, so parallel jobs do not oversubscribe the CPU."""
    torch.set_num_threads(max(1, int(threads)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def log_to(path: str | None = None) -> logging.Logger:
    """Send stderr (progress bars, warnings) and log records to a rule's log file, line-buffered."""
    if path:
        sys.stderr = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115  (lives as long as the job)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    return logging.getLogger("specrec")
