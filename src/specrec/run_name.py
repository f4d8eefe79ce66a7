"""A run's name, parsed in this one place: `base+addon+...~key=value,...`.

`base` is a recipe of the config's `recipes` (`bpr`), each add-on a regulariser entry of `regularizers`
(`sr_warm`), and the setting, after `~`, the grid point the run was trained at (`lr=0.01,weight_decay=1e-08`,
see specrec.tuning). `bpr+sr_warm~lr=0.01` is the add-on run `bpr+sr_warm` at lr 0.01; it is compared with
its reference `bpr` at the setting chosen for `bpr`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
