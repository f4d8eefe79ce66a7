"""A run's identity in one place: its name's grammar, its folder, and the identity its metrics.json records.

A run name, `base+addon+...~key=value,...`, is parsed here and nowhere else.

`base` is a recipe of the config's `recipes` (`bpr`), each add-on a regulariser entry of `regularizers`
(`sr_warm`), and the setting, after `~`, the grid point the run was trained at (`lr=0.01,weight_decay=1e-08`,
see specrec.tuning). `bpr+sr_warm~lr=0.01` is the add-on run `bpr+sr_warm` at lr 0.01; it is compared with
its reference `bpr` at the setting chosen for `bpr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from specrec import io

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


def run_identity(path: str | PathLike) -> dict[str, str | int]:
    """dataset, model, recipe (the run name) and seed of the run a file belongs to, as the run's own
    metrics.json (beside the file, written by the same training job) records them; never read off the path."""
    metrics_file = Path(path).parent / "metrics.json"
    if not metrics_file.exists():
        raise FileNotFoundError(
            f"{metrics_file}: the run of {path} has no metrics.json; train the run again "
            "(run the same snakemake command) so its folder is complete"
        )
    recorded = io.read_json(metrics_file)
    return {key: recorded[key] for key in IDENTITY}
