"""A run in one place: its name's grammar, its folder, the identity its metrics.json records, and the
readers of its result files (one frame per kind of file, rows tagged with the run's identity), which the
tables, the figures, the headline and REPRODUCTION.md share.

A run name, `base+addon+...~key=value,...`, is parsed here and nowhere else.

`base` is a recipe of the config's `recipes` (`bpr`), each add-on a regulariser entry of `regularizers`
(`sr_warm`), and the setting, after `~`, the grid point the run was trained at (`lr=0.01,weight_decay=1e-08`,
see specrec.tuning). `bpr+sr_warm~lr=0.01` is the add-on run `bpr+sr_warm` at lr 0.01; it is compared with
its reference `bpr` at the setting chosen for `bpr`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from specrec import io

PathLike = str | os.PathLike
ADDON = "+"  # between the base recipe and each add-on
SETTING = "~"  # between the recipe and its grid setting


@dataclass(frozen=True)
class RunName:
    base: str
    addons: tuple[str, ...] = ()
    setting: str = ""

    @classmethod
    def parse(cls, text: str) -> RunName:
        recipe, _, setting = text.partition(SETTING)
        base, *addons = recipe.split(ADDON)
        return cls(base, tuple(addons), setting)

    @property
    def recipe(self) -> str:
        """The name without its setting: `bpr+sr_warm`, the cell a grid is settled in."""
        return ADDON.join((self.base, *self.addons))

    @property
    def reference(self) -> str | None:
        """The recipe an add-on run is compared with (`bpr` for `bpr+sr_warm`); None for a base recipe."""
        return self.base if self.addons else None

    def at(self, setting: str) -> RunName:
        """The same recipe at a grid setting."""
        return RunName(self.base, self.addons, setting)

    def __str__(self) -> str:
        return f"{self.recipe}{SETTING}{self.setting}" if self.setting else self.recipe


def recipe_of(text: str) -> str:
    """`bpr+sr_warm~lr=0.01` -> `bpr+sr_warm`."""
    return RunName.parse(text).recipe


def base_of(text: str) -> str:
    """`bpr+sr_warm~lr=0.01` -> `bpr`."""
    return RunName.parse(text).base


def reference_of(text: str) -> str | None:
    """`bpr+sr_warm` -> `bpr`; None for a base recipe."""
    return RunName.parse(text).reference


# every file of a run lives in its folder; its training checkpoints in a folder of the same shape that
# Snakemake never deletes
RUN_FOLDER = "results/runs/{dataset}/{model}/{recipe}/seed{seed}"
CHECKPOINT_FOLDER = "results/checkpoints/{dataset}/{model}/{recipe}/seed{seed}"
IDENTITY = ("dataset", "model", "recipe", "seed")


def run_identity(path: PathLike) -> dict[str, str | int]:
    """dataset, model, recipe (the run name) and seed of the run a file belongs to, as the run's own
    metrics.json (beside the file, written by the same training job) records them; never read off the path."""
    metrics_file = Path(path).parent / "metrics.json"
    if not metrics_file.exists():
        raise FileNotFoundError(
            f"{metrics_file}: the run of {path} has no metrics.json; train the run again "
            "(run the same snakemake command) so its folder is complete"
        )
    return identity_of(io.read_json(metrics_file))


def identity_of(metrics: dict) -> dict[str, str | int]:
    """dataset, model, recipe and seed as a run's metrics.json (or spectrum.json) records them."""
    return {key: metrics[key] for key in IDENTITY}


def require_files(files: Sequence[PathLike], what: str) -> list[Path]:
    """Fail early with a readable message: an empty input list means a wiring error upstream."""
    if files is None or len(files) == 0:
        raise ValueError(f"no {what} files given: nothing to aggregate")
    return [Path(f) for f in files]


def flatten(records: list[dict]) -> pd.DataFrame:
    """Nested JSON -> flat columns joined by '_' (e.g. test.ndcg@20 -> test_ndcg@20)."""
    return pd.json_normalize(records, sep="_")


def metrics_frame(metrics_files: Sequence[PathLike]) -> pd.DataFrame:
    """One row per run with flattened metrics.json fields (test_ndcg@20, valid_recall@20, ...)."""
    files = require_files(metrics_files, "metrics.json")
    return flatten([io.read_json(f) for f in files])


def run_frame(files: Sequence[PathLike], read, what: str) -> pd.DataFrame:
    """`read(file)` of every run's file, rows tagged with the run's dataset, model, recipe and seed."""
    frames = [read(f).assign(**run_identity(f)) for f in require_files(files, what)]
    return pd.concat(frames, ignore_index=True)


def epochs_frame(epochs_files: Sequence[PathLike]) -> pd.DataFrame:
    """Concatenate epochs.csv files with the dataset/model/recipe/seed columns of their runs."""
    return run_frame(epochs_files, pd.read_csv, "epochs.csv")


def spectrum_frame(spectrum_files: Sequence[PathLike]) -> pd.DataFrame:
    """One row per run with flattened spectrum.json fields (user_stable_rank, item_singular_values, ...)."""
    files = require_files(spectrum_files, "spectrum.json")
    return flatten([io.read_json(f) for f in files])


def convergence_frame(runs: pd.DataFrame, share: float = 0.95) -> pd.DataFrame:
    """Per trained run of an epochs frame: best validation NDCG@20, its epoch, and the first epoch, wall
    clock and training time at which `share` of the best was reached."""
    runs = runs[runs.groupby(list(IDENTITY))["epoch"].transform("max") > 0]
    if runs.empty:
        raise ValueError("no trained run among the epochs.csv files")
    rows = []
    for (dataset, model, recipe, seed), run in runs.groupby(list(IDENTITY), sort=False):
        run = run.sort_values("epoch")
        best = run["valid_ndcg@20"].max()
        best_epoch = int(run.loc[run["valid_ndcg@20"].idxmax(), "epoch"])
        reached = run[run["valid_ndcg@20"] >= share * best].iloc[0]
        train_seconds = run["epoch_seconds"].cumsum()[run["epoch"] <= reached["epoch"]].iloc[-1]
        rows.append(
            {
                "dataset": dataset, "model": model, "recipe": recipe, "seed": seed,
                "best_valid_ndcg@20": best, "best_epoch": best_epoch,
                "epochs_to_95": int(reached["epoch"]), "seconds_to_95": reached["elapsed_seconds"],
                "train_seconds_to_95": train_seconds,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)
