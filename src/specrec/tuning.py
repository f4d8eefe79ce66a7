"""Hyper-parameter grids, expanded by the workflow and settled on validation.

`tuning.grids` gives a run name of `runs` (or its base recipe, for every add-on of it) a grid:
`{bpr: {lr: [0.01, 0.001], weight_decay: [1.0e-6, 1.0e-8]}}` turns the run `bpr` into one training job per
setting, named `bpr~lr=0.01,weight_decay=1e-06` and so on. A grid key is a key of the recipe (`lr`,
`n_negatives`, a loss parameter such as `alpha`), a dotted path into it (`regularizers.uniformity`), or
`addon.key` for an add-on of the run (`sr_warm.gamma`).

Every table and figure then reports, for each (dataset, model, recipe) cell, the setting with the best mean
validation metric over seeds (the StableRankReg protocol); test metrics never take part in the choice. The
selection table (`selection_frame`) records every setting's validation score and the chosen one.
"""

from __future__ import annotations

from itertools import product

import pandas as pd

from specrec.runs import RunName


class GridError(ValueError):
    pass


def format_value(value) -> str:
    """Compact and unambiguous in a path: 0.001, 1e-06, 16, uniform."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def configured_grids(config: dict) -> dict:
    """`tuning.grids` of a config ({} where it has none)."""
    return config.get("tuning", {}).get("grids", {})


def grid_of(grids: dict, recipe: str) -> dict[str, list]:
    """The grid of a run name: its own, else its base recipe's (`bpr+sr_warm` is tuned like `bpr`)."""
    if recipe in grids:
        return grids[recipe]
    return grids.get(RunName.parse(recipe).base, {})


def setting_name(setting: dict) -> str:
    return ",".join(f"{key}={format_value(value)}" for key, value in setting.items())


def expand_run(recipe: str, grids: dict) -> list[str]:
    """Every run name of a recipe: one per point of its grid, in grid order (just the recipe without one)."""
    grid = grid_of(grids, recipe)
    if not grid:
        return [recipe]
    points = product(*grid.values())
    name = RunName.parse(recipe)
    return [str(name.at(setting_name(dict(zip(grid, point, strict=True))))) for point in points]


def setting_values(name: str, grids: dict) -> dict:
    """The values a run name sets, looked up in its grid (so 1e-06 comes back as the configured float)."""
    parsed = RunName.parse(name)
    recipe, setting = parsed.recipe, parsed.setting
    if not setting:
        return {}
    grid = grid_of(grids, recipe)
    values = {}
    for token in setting.split(","):
        key, _, shown = token.partition("=")
        matches = [value for value in grid.get(key, []) if format_value(value) == shown]
        if not matches:
            raise GridError(f"run {name!r}: {key}={shown} is not a point of the grid of {recipe!r}: {grid}")
        values[key] = matches[0]
    if set(values) != set(grid):
        raise GridError(f"run {name!r} must set every key of its grid: {', '.join(grid)}")
    return values


def selection_frame(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (dataset, model, run name): mean and std over seeds of the validation `metric`, and whether the
    run's setting is the cell's best. `runs` has dataset, model, recipe (the run name), seed and
    `valid_{metric}` (metrics.json flattened)."""
    column = f"valid_{metric}"
    if column not in runs:
        raise ValueError(f"metrics.json files lack {column!r}: cannot select on validation {metric}")
    frame = runs.assign(run=runs["recipe"])
    names = frame["run"].map(RunName.parse)
    frame["recipe"], frame["setting"] = [n.recipe for n in names], [n.setting for n in names]
    keys = ["dataset", "model", "recipe", "setting", "run"]
    table = frame.groupby(keys, sort=False)[column].agg(["mean", "std", "count"]).reset_index()
    table = table.rename(columns={"mean": column, "std": f"{column}_std", "count": "n_seeds"})
    best = table.groupby(["dataset", "model", "recipe"], sort=False)[column].transform("max")
    table["selected"] = table[column] == best
    # ties (identical scores) keep the first setting in grid order, so exactly one is selected per cell
    first = table[table["selected"]].groupby(["dataset", "model", "recipe"], sort=False).head(1).index
    table["selected"] = table.index.isin(first)
    return table


def apply_selection(frame: pd.DataFrame, selection: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of the selected run of each cell, `recipe` set to the cell's recipe and `setting` added; rows of
    other settings dropped. Without a selection every run is its own cell."""
    if frame.empty:
        return frame.assign(setting=pd.Series(dtype=str))
    if selection is None:
        names = frame["recipe"].map(RunName.parse)
        return frame.assign(recipe=[n.recipe for n in names], setting=[n.setting for n in names])
    known = set(zip(selection["dataset"], selection["model"], selection["run"], strict=True))
    unknown = set(zip(frame["dataset"], frame["model"], frame["recipe"], strict=True)) - known
    if unknown:
        listed = ", ".join("/".join(run) for run in sorted(unknown)[:3])
        raise ValueError(f"runs missing from the selection table: {listed}")
    chosen = selection.loc[selection["selected"], ["dataset", "model", "run", "recipe", "setting"]]
    runs = frame.rename(columns={"recipe": "run"})
    return runs.merge(chosen, on=["dataset", "model", "run"]).drop(columns="run")


def read_selection(path) -> pd.DataFrame:
    """The selection table as `selection_frame` made it (an empty setting is read back as "")."""
    frame = pd.read_csv(path, dtype={"setting": str, "run": str, "recipe": str})
    return frame.assign(setting=frame["setting"].fillna(""), selected=frame["selected"].astype(bool))
