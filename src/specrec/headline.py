"""The study's answer on one figure: how balanced each recipe's embedding spectrum is, against its accuracy.

Per dataset, one marker per (model, recipe): x = the spectrum balance of its final tables (stable rank / d
and effective rank / d, the mean of the user and the item table), y = test NDCG@20, error bars = std over
seeds; beside them the stable rank / d per epoch of the same runs. The caption is computed from the runs:
the Spearman rank correlation between balance and accuracy over the (model, recipe) cells of each dataset,
with its p-value, and which recipes are the most and least balanced and the most accurate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from specrec import io
from specrec.plots import BASELINE_STYLE, _figure, _legend, _palettes, _require_rows, save_figure
from specrec.runs import epochs_frame, metrics_frame, spectrum_frame
from specrec.tuning import apply_selection

PathLike = str | os.PathLike
KEYS = ["dataset", "model", "recipe"]
ACCURACY = "test_ndcg@20"
# (column of the headline frame, axis label, what the caption calls it)
BALANCES = {
    "stable_rank": ("stable rank / d", "the stable rank / d"),
    "effective_rank": ("effective rank / d", "the effective rank / d"),
}


def headline_frame(
    metrics_files: Sequence[PathLike], spectrum_files: Sequence[PathLike], selection: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per run: its test NDCG@20 and the balance of its final spectrum, each measure the mean of the
    user and the item table divided by d (1 = every direction carries the same energy). Runs with a
    one-dimensional table (popularity) keep their NDCG@20 and have no balance."""
    metrics = apply_selection(metrics_frame(metrics_files), selection)
    spectra = apply_selection(spectrum_frame(spectrum_files), selection)
    spectra = spectra.assign(
        **{
            measure: (spectra[f"user_{measure}"] + spectra[f"item_{measure}"]) / 2 / spectra["dim"]
            for measure in BALANCES
        }
    )
    spectra.loc[spectra["dim"] <= 1, list(BALANCES)] = np.nan
    columns = [*KEYS, "seed", "dim", *BALANCES]
    return metrics[[*KEYS, "seed", ACCURACY]].merge(spectra[columns], on=[*KEYS, "seed"], how="inner")


def cell_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (dataset, model, recipe) of accuracy and balance."""
    stats = runs.groupby(KEYS)[[ACCURACY, *BALANCES]].agg(["mean", "std"])
    stats.columns = [f"{column}_{stat}" for column, stat in stats.columns]
    seeds = runs.groupby(KEYS)["seed"].nunique().rename("n_seeds")
    return pd.concat([seeds, stats], axis=1).reset_index()


def correlation(cells: pd.DataFrame, measure: str) -> dict:
    """Spearman's rank correlation of a balance measure with test NDCG@20 over the cells (one point per
    (model, recipe), seeds averaged), with its two-sided p-value; None where fewer than 3 cells exist."""
    from scipy import stats  # only the headline needs scipy here

    points = cells[[f"{measure}_mean", f"{ACCURACY}_mean"]].dropna()
    if len(points) < 3 or points.nunique().min() < 2:
        return {"rho": None, "p": None, "n": len(points)}
    result = stats.spearmanr(points.iloc[:, 0], points.iloc[:, 1])
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": len(points)}


def _name(row: pd.Series, several_models: bool) -> str:
    return f"{row['model']} {row['recipe']}" if several_models else row["recipe"]


def _verdict(found: dict, what: str) -> str:
    if found["rho"] is None:
        return f"too few recipes to correlate accuracy with {what}"
    direction = "rises" if found["rho"] > 0 else "falls"
    strength = "significantly" if found["p"] < 0.05 else "not significantly"
    return (
        f"test NDCG\\@20 {direction} with {what}, {strength} at 5 %: Spearman ρ = {found['rho']:+.2f} "
        f"(p = {found['p']:.2g}, n = {found['n']})"
    )


def dataset_statement(dataset: str, cells: pd.DataFrame) -> dict:
    """What one dataset's runs show, as numbers and as one paragraph of reStructuredText."""
    trained = cells.dropna(subset=["stable_rank_mean"])
    found = {measure: correlation(trained, measure) for measure in BALANCES}
    several = trained["model"].nunique() > 1
    seeds = sorted(set(cells["n_seeds"]))
    text = [
        f"**{dataset}** ({len(trained)} trained (model, recipe) cells, "
        f"{'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''} each): "
        + "; ".join(_verdict(found[m], BALANCES[m][1]) for m in BALANCES)
        + "."
    ]
    if len(trained):
        balanced = trained.loc[trained["stable_rank_mean"].idxmax()]
        collapsed = trained.loc[trained["stable_rank_mean"].idxmin()]
        accurate = cells.loc[cells[f"{ACCURACY}_mean"].idxmax()]
        text.append(
            f"Most balanced: {_name(balanced, several)} (stable rank / d {balanced['stable_rank_mean']:.3f}, "
            f"NDCG\\@20 {balanced[f'{ACCURACY}_mean']:.4f}); least balanced: {_name(collapsed, several)} "
            f"({collapsed['stable_rank_mean']:.3f}, NDCG\\@20 {collapsed[f'{ACCURACY}_mean']:.4f}); most "
            f"accurate: {_name(accurate, several)} (NDCG\\@20 {accurate[f'{ACCURACY}_mean']:.4f})."
        )
    return {"dataset": dataset, "correlations": found, "text": " ".join(text)}


def statements(runs: pd.DataFrame) -> list[dict]:
    cells = cell_means(runs)
    return [dataset_statement(dataset, group) for dataset, group in cells.groupby("dataset", sort=True)]


def write_caption(found: list[dict], template: PathLike, out: PathLike) -> None:
    """The figure's caption: what this study's numbers show, then the template's description (it may hold
    Jinja over the config, rendered by Snakemake's report and the overview page alike)."""
    computed = "\n\n".join(entry["text"] for entry in found)
    if "{" in computed or "}" in computed:  # would be read as Jinja by the report
        raise ValueError("a run name holds a brace, which the report would read as a template")
    io.write_text(out, f"*What this study shows.* {computed}\n\n{Path(template).read_text()}")


def _draw_scatter(ax, cells: pd.DataFrame, measure: str, colours: dict, styles: dict) -> None:
    trained = cells.dropna(subset=[f"{measure}_mean"])
    for _, cell in trained.iterrows():
        ax.errorbar(
            cell[f"{measure}_mean"],
            cell[f"{ACCURACY}_mean"],
            xerr=np.nan_to_num(cell[f"{measure}_std"]),
            yerr=np.nan_to_num(cell[f"{ACCURACY}_std"]),
            color=colours[cell["recipe"]],
            marker=styles[cell["model"]]["marker"],
            markersize=7,
            linestyle="none",
            capsize=2,
            markeredgecolor="white",
            markeredgewidth=0.6,
            gid=f"{cell['model']}|{cell['recipe']}",
        )
    for _, cell in cells[cells[f"{measure}_mean"].isna()].iterrows():  # popularity: a reference level
        ax.axhline(cell[f"{ACCURACY}_mean"], color=colours[cell["recipe"]], **BASELINE_STYLE)
        ax.annotate(
            cell["model"],
            xy=(1, cell[f"{ACCURACY}_mean"]),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=7,
            color=colours[cell["recipe"]],
        )
    ax.set_xlim(0, max(0.05, 1.15 * float(trained[f"{measure}_mean"].max())) if len(trained) else 1)
    ax.margins(y=0.12)
    ax.set_xlabel(f"{BALANCES[measure][0]}, mean of user & item (→ balanced)")
    ax.set_ylabel("test NDCG@20")


def _draw_epochs(ax, epochs: pd.DataFrame, colours: dict, styles: dict) -> None:
    for (model, recipe), group in epochs.groupby(["model", "recipe"]):
        curve = group.groupby("epoch")["stable_rank"].agg(["mean", "min", "max"])
        ax.plot(curve.index, curve["mean"], color=colours[recipe], **styles[model], markevery=10)
        if group["seed"].nunique() > 1:
            ax.fill_between(curve.index, curve["min"], curve["max"], color=colours[recipe], alpha=0.18, lw=0)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("stable rank / d, mean of user & item")
    ax.set_yscale("log")


def plot_headline(
    metrics_files: Sequence[PathLike],
    spectrum_files: Sequence[PathLike],
    epochs_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
) -> list[dict]:
    """Draw the headline figure (one row per dataset) and return each dataset's computed statement."""
    runs = headline_frame(metrics_files, spectrum_files, selection)
    _require_rows(runs.dropna(subset=["stable_rank"]), "no trained run with a spectrum (dim > 1)")
    epochs = apply_selection(epochs_frame(epochs_files), selection)
    epochs = epochs[epochs["epoch"] > 0].merge(runs[[*KEYS, "seed", "dim"]], on=[*KEYS, "seed"])
    epochs["stable_rank"] = (epochs["user_stable_rank"] + epochs["item_stable_rank"]) / 2 / epochs["dim"]
    cells = cell_means(runs)
    found = statements(runs)
    colours, styles = _palettes(runs, recipes, models)
    marker_styles = {model: {**style, "linestyle": "none"} for model, style in styles.items()}
    datasets = sorted(cells["dataset"].unique())
    with _figure(len(datasets), 3) as (fig, axes):
        for row, dataset, entry in zip(axes, datasets, found, strict=True):
            subset = cells[cells["dataset"] == dataset]
            for ax, measure in zip(row[:2], BALANCES, strict=True):
                _draw_scatter(ax, subset, measure, colours, marker_styles)
                found_here = entry["correlations"][measure]
                shown = (
                    "too few cells"
                    if found_here["rho"] is None
                    else f"ρ = {found_here['rho']:+.2f}, p = {found_here['p']:.2g}"
                )
                ax.set_title(f"{dataset}: accuracy vs {BALANCES[measure][0]}\n(Spearman {shown})")
            _draw_epochs(row[2], epochs[epochs["dataset"] == dataset], colours, styles)
            row[2].set_title(f"{dataset}: stable rank / d per epoch")
        _legend(fig, runs.dropna(subset=["stable_rank"]), colours, marker_styles)
        fig.suptitle("Does a more balanced spectrum rank better? (mean ± std over seeds)")
        save_figure(fig, pdf, png)
    return found


def headline(
    metrics_files: Sequence[PathLike],
    spectrum_files: Sequence[PathLike],
    epochs_files: Sequence[PathLike],
    out: dict[str, PathLike],
    template: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
) -> list[dict]:
    """The headline job: the figure (out["pdf"], out["png"]), its computed caption (out["caption"], from
    `template`) and the numbers behind the caption (out["json"])."""
    found = plot_headline(
        metrics_files, spectrum_files, epochs_files, out["pdf"], out["png"], recipes, models, selection
    )
    io.write_json(out["json"], {"datasets": found})
    write_caption(found, template, out["caption"])
    return found
