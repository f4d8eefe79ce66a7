"""Paper-style figures built only from per-run result files (epochs.csv, spectrum.json).

A figure never retrains or opens a checkpoint. Colour always encodes the recipe (stable across every
figure because the workflow passes the full recipe list from the config) and line style / marker
encodes the model, so a reader can compare figures side by side.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")  # headless: figures are rendered inside Snakemake jobs

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from specrec import io  # noqa: E402
from specrec.losses.directspec import filter_point  # noqa: E402
from specrec.runs import (  # noqa: E402
    convergence_frame,
    epochs_frame,
    identity_of,
    reference_of,
    require_files,
    run_frame,
    spectrum_frame,
)
from specrec.tuning import apply_selection  # noqa: E402

PathLike = str | os.PathLike

STYLE = {
    "font.family": "serif",
    "font.serif": ["STIXGeneral", "DejaVu Serif", "Times New Roman", "serif"],
    "mathtext.fontset": "stix",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 4.5,
    "legend.frameon": False,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,  # embed TrueType so the PDF text stays editable/searchable
}
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
PANEL_WIDTH, PANEL_HEIGHT = 3.4, 2.6
BASELINE_STYLE = {"linestyle": (0, (1, 1.5)), "linewidth": 1.2}


# ---------------------------------------------------------------- identities, colours, styles


def recipe_colours(recipes: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """Colours in the given order, so a recipe looks the same everywhere: tab10, then Dark2 and Set1 (27
    distinct hues; tab20's light/dark pairs would make neighbouring recipes look alike)."""
    palette = [
        plt.get_cmap(name)(i) for name, n in (("tab10", 10), ("Dark2", 8), ("Set1", 9)) for i in range(n)
    ]
    unique = list(dict.fromkeys(recipes))
    return {r: palette[i % len(palette)] for i, r in enumerate(unique)}


def model_styles(models: Sequence[str]) -> dict[str, dict[str, str]]:
    """Line style and marker per model, in the given order."""
    unique = list(dict.fromkeys(models))
    return {
        m: {"linestyle": LINESTYLES[i % len(LINESTYLES)], "marker": MARKERS[i % len(MARKERS)]}
        for i, m in enumerate(unique)
    }


def _palettes(frame: pd.DataFrame, recipes: Sequence[str], models: Sequence[str] | None):
    """Colour/style maps; recipes missing from the configured list are appended rather than crashing."""
    extra = sorted(set(frame["recipe"]) - set(recipes))
    colours = recipe_colours([*recipes, *extra])
    styles = model_styles([*(models or []), *sorted(set(frame["model"]) - set(models or []))])
    return colours, styles


# ---------------------------------------------------------------- loading


def _drop_untrained(frame: pd.DataFrame) -> pd.DataFrame:
    """Remove runs whose only row is epoch 0 (e.g. popularity): they have no training curve."""
    keys = ["dataset", "model", "recipe", "seed"]
    trained = frame.groupby(keys)["epoch"].transform("max") > 0
    return frame[trained]


def _require_rows(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if frame.empty:
        raise ValueError(f"nothing to plot: {what}")
    return frame


# ---------------------------------------------------------------- drawing helpers


@contextmanager
def _figure(nrows: int, ncols: int) -> Iterator[tuple[Figure, np.ndarray]]:
    """A constrained-layout figure in the paper style, closed afterwards so memory is not leaked."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(PANEL_WIDTH * ncols + 1.6, PANEL_HEIGHT * nrows + 0.3),
            squeeze=False,
            layout="constrained",
        )
        try:
            yield fig, axes
        finally:
            plt.close(fig)


def save_figure(fig: Figure, pdf: PathLike, png: PathLike) -> None:
    """Write PDF and PNG atomically; the format is explicit because temp files end in .tmp."""
    with io.atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})  # reproducible bytes
    with io.atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")


def _legend(
    fig: Figure,
    frame: pd.DataFrame,
    colours: dict,
    styles: dict,
    extra: Sequence[Line2D] = (),
    models_from: pd.DataFrame | None = None,
):
    """One legend to the right: a 'recipe' block (colours) and a 'model' block (line style + marker)."""
    recipes = [r for r in colours if r in set(frame["recipe"])]
    models = [m for m in styles if m in set((frame if models_from is None else models_from)["model"])]
    blank = Line2D([], [], linestyle="none")
    handles = [blank, *[Line2D([], [], color=colours[r], lw=2.5) for r in recipes]]
    handles += [blank, *[Line2D([], [], color="0.25", **styles[m]) for m in models], *extra]
    labels = ["recipe", *recipes, "model", *models, *[h.get_label() for h in extra]]
    legend = fig.legend(handles, labels, loc="outside right upper", handlelength=2.6)
    texts = legend.get_texts()
    for header in (0, len(recipes) + 1):  # the two block titles
        texts[header].set_fontweight("bold")
    return legend


def _user_item_figure(runs: pd.DataFrame, draw, title: str, colours, styles, pdf, png) -> None:
    """One row per dataset, user table left and item table right; `draw(ax, runs_of_dataset, side)`."""
    datasets = sorted(runs["dataset"].unique())
    with _figure(len(datasets), 2) as (fig, axes):
        for row, dataset in zip(axes, datasets, strict=True):
            for ax, side in zip(row, ("user", "item"), strict=True):
                draw(ax, runs[runs["dataset"] == dataset], side)
                ax.set_title(f"{dataset}: {side} embeddings")
        _legend(fig, runs, colours, styles)
        fig.suptitle(title)
        save_figure(fig, pdf, png)


def _line_kwargs(model: str, recipe: str, colours: dict, styles: dict, n_points: int) -> dict:
    """Markers on every ~10th point only, so dense curves stay readable."""
    return {
        "color": colours[recipe],
        **styles[model],
        "markevery": max(1, n_points // 10),
        "gid": f"{model}|{recipe}",  # lets tests (and SVG readers) identify the curve
    }


# ---------------------------------------------------------------- (a) singular-value spectrum


def _mean_relative_spectrum(values: pd.Series) -> np.ndarray:
    """σ_k/σ_1 per seed, then averaged over seeds (truncated to the shortest spectrum)."""
    spectra = [np.asarray(v, dtype=float) for v in values]
    length = min(len(s) for s in spectra)
    relative = [s[:length] / s[0] if s[0] > 0 else np.full(length, np.nan) for s in spectra]
    return np.nanmean(np.vstack(relative), axis=0)


def plot_spectrum(
    spectrum_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
) -> None:
    """Normalised singular values σ_k/σ_1 of user and item embeddings, one curve per (model, recipe).

    A flat curve means the embedding uses all directions; a steep early drop means dimensional collapse.
    One row of panels per dataset (the workflow passes one dataset per figure).
    """
    runs = apply_selection(spectrum_frame(spectrum_files), selection)
    runs = _require_rows(runs[runs["dim"] > 1], "every run has dim == 1 (no spectrum to show)")
    colours, styles = _palettes(runs, recipes, models)

    def draw(ax, subset: pd.DataFrame, side: str) -> None:
        for (model, recipe), group in subset.groupby(["model", "recipe"]):
            curve = _mean_relative_spectrum(group[f"{side}_singular_values"])
            k = np.arange(1, len(curve) + 1)
            ax.plot(k, curve, **_line_kwargs(model, recipe, colours, styles, len(k)))
        ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel("singular-value index $k$")
        ax.set_ylabel(r"$\sigma_k / \sigma_1$ (log scale)")

    title = "Singular-value spectrum (mean over seeds; steep drop = collapse)"
    _user_item_figure(runs, draw, title, colours, styles, pdf, png)


# ---------------------------------------------------------------- (b) stable rank during training


def plot_stable_rank(
    epochs_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
) -> None:
    """Stable rank and effective rank of the user and item tables per epoch (four panels per dataset):
    mean over seeds, min–max band for several seeds. Shows when during training a loss collapses (or
    spreads) the embedding spectrum."""
    runs = _drop_untrained(apply_selection(epochs_frame(epochs_files), selection))
    runs = _require_rows(runs, "only untrained (epoch-0) runs given")
    colours, styles = _palettes(runs, recipes, models)
    measures = {"stable_rank": r"stable rank $\|E\|_F^2 / \|E\|_2^2$", "effective_rank": "effective rank"}
    panels = [(measure, side) for measure in measures for side in ("user", "item")]

    def draw(ax, subset: pd.DataFrame, column: str) -> None:
        if column not in subset:
            return
        for (model, recipe), group in subset.groupby(["model", "recipe"]):
            stats = group.dropna(subset=[column]).groupby("epoch")[column].agg(["mean", "min", "max"])
            kwargs = _line_kwargs(model, recipe, colours, styles, len(stats))
            ax.plot(stats.index, stats["mean"], **kwargs)
            if group["seed"].nunique() > 1:
                ax.fill_between(
                    stats.index, stats["min"], stats["max"], color=kwargs["color"], alpha=0.18, linewidth=0
                )

    datasets = sorted(runs["dataset"].unique())
    with _figure(len(datasets), len(panels)) as (fig, axes):
        for row, dataset in zip(axes, datasets, strict=True):
            for ax, (measure, side) in zip(row, panels, strict=True):
                draw(ax, runs[runs["dataset"] == dataset], f"{side}_{measure}")
                ax.set_title(f"{dataset}: {side} embeddings")
                ax.set_xlabel("epoch")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_ylabel(measures[measure])
        _legend(fig, runs, colours, styles)
        fig.suptitle("Stable and effective rank during training (mean over seeds, band = min–max)")
        save_figure(fig, pdf, png)


# ---------------------------------------------------------------- (c) validation curve


def plot_validation_curve(
    epochs_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    metric: str = "valid_ndcg@20",
    selection: pd.DataFrame | None = None,
) -> None:
    """Validation NDCG@20 per epoch, one line per run (seed); the best epoch of each run is circled.

    Runs without training (a single epoch-0 row, e.g. popularity) are drawn as horizontal reference lines.
    """
    runs = apply_selection(epochs_frame(epochs_files), selection)
    if metric not in runs:
        raise ValueError(f"epochs.csv files lack the column {metric!r}")
    trained = _drop_untrained(runs)
    baselines = runs.drop(trained.index)
    colours, styles = _palettes(runs, recipes, models)
    datasets = sorted(runs["dataset"].unique())
    with _figure(1, len(datasets)) as (fig, axes):
        for ax, dataset in zip(axes[0], datasets, strict=True):
            subset = trained[trained["dataset"] == dataset]
            for (model, recipe, _seed), group in subset.groupby(["model", "recipe", "seed"]):
                curve = group.dropna(subset=[metric]).sort_values("epoch")
                ax.plot(
                    curve["epoch"],
                    curve[metric],
                    alpha=0.85,
                    **_line_kwargs(model, recipe, colours, styles, len(curve)),
                )
                if not curve.empty:
                    best = curve.loc[curve[metric].idxmax()]
                    ax.plot(
                        best["epoch"],
                        best[metric],
                        marker="o",
                        markersize=7,
                        markerfacecolor="none",
                        markeredgecolor=colours[recipe],
                        markeredgewidth=1.2,
                        linestyle="none",
                    )
            flat = baselines[baselines["dataset"] == dataset]
            for (model, recipe), group in flat.groupby(["model", "recipe"]):
                level = group[metric].mean()
                ax.axhline(level, color=colours[recipe], **BASELINE_STYLE)
                ax.annotate(
                    model,
                    xy=(1, level),
                    xycoords=("axes fraction", "data"),
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color=colours[recipe],
                )
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("validation NDCG@20" if metric == "valid_ndcg@20" else metric)
            ax.set_title(dataset)
        extra = [
            Line2D(
                [],
                [],
                marker="o",
                markersize=7,
                markerfacecolor="none",
                markeredgecolor="0.25",
                linestyle="none",
                label="best epoch",
            )
        ]
        if not baselines.empty:
            extra.append(Line2D([], [], color="0.25", label="untrained baseline", **BASELINE_STYLE))
        _legend(fig, runs, colours, styles, extra=extra, models_from=trained)
        fig.suptitle("Validation NDCG@20 (one line per seed)")
        save_figure(fig, pdf, png)


# ---------------------------------------------------------------- (d) alignment vs uniformity


def plot_alignment_uniformity(
    spectrum_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
) -> None:
    """Alignment (x) vs uniformity (y, mean of user and item), one marker per (model, recipe).

    Both are lower-is-better (Wang & Isola, 2020), so the best trade-off sits in the lower-left corner.
    Error bars show the std over seeds when there are several.
    """
    runs = apply_selection(spectrum_frame(spectrum_files), selection)
    numeric = runs[["user_uniformity", "item_uniformity", "alignment"]].apply(pd.to_numeric, errors="coerce")
    runs["uniformity"] = numeric[["user_uniformity", "item_uniformity"]].mean(axis=1)
    runs["alignment"] = numeric["alignment"]
    finite = np.isfinite(runs[["alignment", "uniformity"]]).all(axis=1) & (runs["dim"] > 1)
    runs = _require_rows(runs[finite], "no run has finite alignment and uniformity")
    colours, styles = _palettes(runs, recipes, models)
    points = runs.groupby(["dataset", "model", "recipe"])[["alignment", "uniformity"]].agg(["mean", "std"])
    datasets = sorted(runs["dataset"].unique())
    with _figure(1, len(datasets)) as (fig, axes):
        for ax, dataset in zip(axes[0], datasets, strict=True):
            for (_, model, recipe), p in points.loc[[dataset]].iterrows():
                ax.errorbar(
                    p[("alignment", "mean")],
                    p[("uniformity", "mean")],
                    xerr=np.nan_to_num(p[("alignment", "std")]),
                    yerr=np.nan_to_num(p[("uniformity", "std")]),
                    color=colours[recipe],
                    marker=styles[model]["marker"],
                    markersize=7,
                    linestyle="none",
                    capsize=2,
                    gid=f"{model}|{recipe}",
                    markeredgecolor="white",
                    markeredgewidth=0.6,
                )
            ax.margins(0.15)
            ax.annotate(
                "better",
                xy=(0.04, 0.04),
                xytext=(0.22, 0.22),
                xycoords="axes fraction",
                arrowprops={"arrowstyle": "->", "color": "0.4"},
                color="0.4",
                fontsize=8,
            )
            ax.set_xlabel(
                r"alignment $\mathbb{E}\,\|\tilde u-\tilde\imath\|^2$ on test pairs (lower = better)"
            )
            ax.set_ylabel("uniformity, mean of user & item\n(lower = better)")
            ax.set_title(dataset)
        marker_styles = {m: {**s, "linestyle": "none"} for m, s in styles.items()}
        _legend(fig, runs, colours, marker_styles)
        fig.suptitle("Alignment vs uniformity: lower-left is better")
        save_figure(fig, pdf, png)


# ---------------------------------------------------------------- (f) cold start, (g) diversity


def plot_activity(
    activity_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    metric: str = "ndcg@20",
    selection: pd.DataFrame | None = None,
) -> None:
    """A metric by user-activity bin (paper 1's Fig. 1/5): x = bins of training interactions from the
    cold-start bottom 1 % to the most active quarter, y = the bin's mean over users (mean ± std over seeds),
    one line per (model, recipe)."""
    runs = run_frame(activity_files, lambda f: pd.read_csv(f).reset_index(names="bin_index"), "activity.csv")
    runs = apply_selection(runs, selection)
    if metric not in runs:
        raise ValueError(f"activity files lack {metric!r}; they have {sorted(runs.columns)}")
    colours, styles = _palettes(runs, recipes, models)
    datasets = sorted(runs["dataset"].unique())
    with _figure(1, len(datasets)) as (fig, axes):
        for ax, dataset in zip(axes[0], datasets, strict=True):
            of_dataset = runs[runs["dataset"] == dataset]
            curves = of_dataset.groupby(["model", "recipe", "bin_index"])[metric].agg(["mean", "std"])
            for (model, recipe), curve in curves.groupby(level=[0, 1]):
                x = curve.index.get_level_values("bin_index")
                ax.errorbar(
                    x, curve["mean"], yerr=np.nan_to_num(curve["std"]), capsize=2,
                    **_line_kwargs(model, recipe, colours, styles, len(x)),
                )  # fmt: skip
            labels = of_dataset.drop_duplicates("bin_index").sort_values("bin_index")
            ax.set_xticks(labels["bin_index"], labels["bin"], rotation=20, ha="right")
            ax.set_xlabel("users binned by training interactions (cold start left)")
            ax.set_ylabel(f"test {metric}")
            ax.set_title(dataset)
        _legend(fig, runs, colours, styles)
        fig.suptitle(f"Cold start: test {metric} by user activity")
        save_figure(fig, pdf, png)


DIVERSITY_MEASURES = {
    "ild_genre": "ILD (genre)",
    "ild_text": "ILD (synopsis)",
    "inter_list": "inter-list",
    "coverage": "coverage",
}


def plot_diversity(
    diversity_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    k: int = 20,
    selection: pd.DataFrame | None = None,
) -> None:
    """Diversity bars (paper 1's Table 4 as a figure): for each measure of the top-k lists, one bar per
    (model, recipe), mean ± std over seeds. Higher is more diverse on every measure."""

    def read(path):
        return pd.DataFrame([io.read_json(path).get(str(k), {})])

    runs = apply_selection(run_frame(diversity_files, read, "diversity.json"), selection)
    runs = _require_rows(runs, f"no top-{k} diversity")
    measures = [m for m in DIVERSITY_MEASURES if m in runs and runs[m].notna().any()]
    colours, styles = _palettes(runs, recipes, models)
    hatches = {model: ["", "//", "..", "xx"][i % 4] for i, model in enumerate(styles)}
    datasets = sorted(runs["dataset"].unique())
    with _figure(1, len(datasets)) as (fig, axes):
        for ax, dataset in zip(axes[0], datasets, strict=True):
            of_dataset = runs[runs["dataset"] == dataset]
            bars = of_dataset.groupby(["model", "recipe"])[measures].agg(["mean", "std"])
            width = 0.8 / len(bars)
            for position, ((model, recipe), row) in enumerate(bars.iterrows()):
                x = np.arange(len(measures)) + (position - (len(bars) - 1) / 2) * width
                means = [row[(m, "mean")] for m in measures]
                errors = [row[(m, "std")] for m in measures]
                ax.bar(
                    x, means, width, color=colours[recipe], hatch=hatches[model], edgecolor="white",
                    yerr=None if np.isnan(errors).all() else np.nan_to_num(errors), capsize=2,
                    label=f"{model}: {recipe}", gid=f"{model}|{recipe}",
                )  # fmt: skip
            ax.set_xticks(np.arange(len(measures)), [DIVERSITY_MEASURES[m] for m in measures])
            ax.set_ylabel(f"diversity of the top-{k} lists")
            ax.set_ylim(0, 1.05)
            ax.set_title(dataset)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", title="model: recipe")
        fig.suptitle(f"Top-{k} diversity (higher = more diverse)")
        save_figure(fig, pdf, png)


# ---------------------------------------------------------------- (c') add-ons against their base recipe


def addon_pairs(frame: pd.DataFrame) -> list[tuple[str, str, str, list[str]]]:
    """(dataset, model, base recipe, [its add-on runs]) wherever both `base` and `base+addon...` were run."""
    found = []
    for (dataset, model), group in frame.groupby(["dataset", "model"], sort=True):
        recipes = set(group["recipe"])
        for base in sorted(r for r in recipes if reference_of(r) is None):
            addons = sorted(r for r in recipes if reference_of(r) == base)
            if addons:
                found.append((dataset, model, base, addons))
    return found


def plot_convergence_speedup(
    epochs_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    recipes: Sequence[str],
    models: Sequence[str] | None = None,
    share: float = 0.95,
    selection: pd.DataFrame | None = None,
) -> None:
    """Validation NDCG@20 against epoch (left) and wall clock (right) for every base recipe and its add-ons
    (the stable-rank warm start: `bpr` vs `bpr+sr_warm`), mean over seeds; a dashed line at `share` of
    each curve's best and a mark where it is first reached, the speed-up in epochs and seconds annotated."""
    runs = _drop_untrained(apply_selection(epochs_frame(epochs_files), selection))
    pairs = _require_rows(pd.DataFrame(addon_pairs(runs)), "no run has both a base recipe and an add-on")
    reached = convergence_frame(runs, share).groupby(["dataset", "model", "recipe"]).mean(numeric_only=True)
    colours, styles = _palettes(runs, recipes, models)
    with _figure(len(pairs), 2) as (fig, axes):
        for row, (dataset, model, base, addons) in zip(axes, pairs.itertuples(index=False), strict=True):
            for ax, x in zip(row, ("epoch", "elapsed_seconds"), strict=True):
                for recipe in [base, *addons]:
                    curve = runs[
                        (runs["dataset"] == dataset) & (runs["model"] == model) & (runs["recipe"] == recipe)
                    ]
                    mean = curve.groupby("epoch")[[x, "valid_ndcg@20"]].mean()
                    kwargs = _line_kwargs(model, recipe, colours, styles, len(mean))
                    ax.plot(mean[x], mean["valid_ndcg@20"], **kwargs)
                    point = reached.loc[(dataset, model, recipe)]
                    at = point["epochs_to_95"] if x == "epoch" else point["seconds_to_95"]
                    ax.axhline(share * point["best_valid_ndcg@20"], color=kwargs["color"], lw=0.8, ls="--")
                    ax.axvline(at, color=kwargs["color"], lw=0.8, ls=":")
                ax.set_xlabel("epoch" if x == "epoch" else "wall clock (s): training + validation")
                ax.set_ylabel("validation NDCG@20")
                ax.set_title(f"{dataset} · {model} · {base}")
            notes = []
            base_point = reached.loc[(dataset, model, base)]
            for recipe in addons:
                point = reached.loc[(dataset, model, recipe)]
                saved = 1 - point["seconds_to_95"] / base_point["seconds_to_95"]
                notes.append(
                    f"{recipe}: {point['epochs_to_95']:.0f} vs {base_point['epochs_to_95']:.0f} epochs, "
                    f"{point['seconds_to_95']:.0f} vs {base_point['seconds_to_95']:.0f} s: "
                    f"{saved:+.0%} time saved"
                )
            row[1].text(0.98, 0.04, "\n".join(notes), transform=row[1].transAxes, ha="right", va="bottom",
                        fontsize=7, color="0.25")  # fmt: skip
        _legend(
            fig,
            runs[runs["recipe"].isin({r for p in pairs.itertuples(index=False) for r in [p[2], *p[3]]})],
            colours,
            styles,
        )
        fig.suptitle(
            f"Time to {share:.0%} of the best validation NDCG@20 (dotted): add-ons against their base"
        )
        save_figure(fig, pdf, png)


# ---------------------------------------------------------------- (e) accuracy against negatives


def negatives_frame(metrics_files: Sequence[PathLike], metric: str = "ndcg@20") -> pd.DataFrame:
    """One row per run with a sampled-negative loss: its loss, number of negatives, whether a stable-rank
    term is in its recipe (whole run or warm start), and its test `metric` — read from metrics.json alone."""
    rows = []
    for path in require_files(metrics_files, "metrics.json"):
        metrics = io.read_json(path)
        recipe = metrics.get("provenance", {}).get("recipe") or {}
        if recipe.get("n_negatives", 0) < 1:
            continue
        terms = {term["name"] for term in recipe.get("regularizers", [])}
        rows.append(
            identity_of(metrics)
            | {
                "loss": recipe["loss"]["name"],
                "n_negatives": recipe["n_negatives"],
                "stable_rank": "stable_rank" in terms,
                metric: metrics["test"][metric],
            }
        )
    return pd.DataFrame(rows)


def plot_negatives(
    metrics_files: Sequence[PathLike],
    pdf: PathLike,
    png: PathLike,
    metric: str = "ndcg@20",
    selection: pd.DataFrame | None = None,
) -> None:
    """Test `metric` against the number of sampled negatives per loss (log x), solid without and dashed
    with the stable-rank regulariser, mean ± std over seeds: can the regulariser stand in for negatives?"""
    runs = apply_selection(negatives_frame(metrics_files, metric), selection)
    if not runs.empty:
        runs = runs[runs.groupby(["dataset", "model", "loss"])["n_negatives"].transform("nunique") > 1]
    runs = _require_rows(runs, "no loss was run with several numbers of negatives")
    colours = recipe_colours(sorted(runs["loss"].unique()))
    datasets = sorted(runs["dataset"].unique())
    with _figure(1, len(datasets)) as (fig, axes):
        for ax, dataset in zip(axes[0], datasets, strict=True):
            of_dataset = runs[runs["dataset"] == dataset]
            keys = ["model", "loss", "stable_rank", "n_negatives"]
            points = of_dataset.groupby(keys)[metric].agg(["mean", "std"]).reset_index()
            for (model, loss, with_sr), line in points.groupby(["model", "loss", "stable_rank"]):
                ax.errorbar(
                    line["n_negatives"], line["mean"], yerr=np.nan_to_num(line["std"]), capsize=2,
                    color=colours[loss], linestyle="--" if with_sr else "-", marker="o",
                    label=f"{model} {loss}" + (" + stable rank" if with_sr else ""),
                    gid=f"{model}|{loss}|{with_sr}",
                )  # fmt: skip
            ax.set_xscale("log", base=2)
            ax.set_xlabel("negatives per positive (per batch for a shared sampler)")
            ax.set_ylabel(f"test {metric}")
            ax.set_title(dataset)
        handles, labels = axes[0][0].get_legend_handles_labels()
        # below the panels: a right-hand legend would run into the centred title of a one-panel figure
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
        fig.suptitle(f"Test {metric} against the number of negatives")
        save_figure(fig, pdf, png)


# ---------------------------------------------------------------- (f') DirectSpec(+) sensitivity


SYMBOLS = {"alpha": "α", "tau": "τ"}


def filter_parameters_frame(metrics_files: Sequence[PathLike], metric: str = "ndcg@20") -> pd.DataFrame:
    """One row per DirectSpec(+) run: loss, alpha, tau (NaN for DirectSpec and adaptive temperatures) and the
    test `metric`, read from the recipe recorded in metrics.json."""
    rows = []
    for path in require_files(metrics_files, "metrics.json"):
        metrics = io.read_json(path)
        loss = (metrics.get("provenance", {}).get("recipe") or {}).get("loss", {})
        point = filter_point(loss)
        if point is None:
            continue
        alpha, tau = point
        rows.append(
            identity_of(metrics)
            | {
                "loss": loss["name"],
                "alpha": alpha,
                "tau": np.nan if tau is None else tau,
                f"valid_{metric}": metrics["valid"][metric],
                metric: metrics["test"][metric],
            }
        )
    return pd.DataFrame(rows)


def best_per_filter_setting(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """For each (dataset, model, loss, alpha, tau), the runs of the setting of the other tuned keys (the
    learning rate) with the best mean validation `metric`: a point of the sensitivity curve is the filter's
    best on validation, not an average over learning rates."""
    point = ["dataset", "model", "loss", "alpha", "tau"]
    scores = runs.groupby([*point, "recipe"], dropna=False)[f"valid_{metric}"].mean().reset_index()
    best = scores.loc[
        scores.groupby(point, dropna=False)[f"valid_{metric}"].idxmax(), ["dataset", "model", "recipe"]
    ]
    return runs.merge(best, on=["dataset", "model", "recipe"])


def plot_filter_sensitivity(
    metrics_files: Sequence[PathLike], pdf: PathLike, png: PathLike, metric: str = "ndcg@20"
) -> None:
    """DirectSpec(+) sensitivity (paper 2): test `metric` against α (left, one line per τ) and against τ
    (right, one line per α), mean ± std over seeds, one row per dataset."""
    runs = filter_parameters_frame(metrics_files, metric)
    if not runs.empty:
        varied = runs.groupby(["dataset", "model", "loss"])[["alpha", "tau"]].transform("nunique").max(axis=1)
        runs = runs[varied > 1]
    runs = best_per_filter_setting(_require_rows(runs, "no DirectSpec(+) run varies alpha or tau"), metric)
    datasets = sorted(runs["dataset"].unique())
    with _figure(len(datasets), 2) as (fig, axes):
        for row, dataset in zip(axes, datasets, strict=True):
            of_dataset = runs[runs["dataset"] == dataset]
            for ax, (x, line_by) in zip(row, (("alpha", "tau"), ("tau", "alpha")), strict=True):
                points = of_dataset.dropna(subset=[x]).fillna({line_by: -1.0})
                stats = (
                    points.groupby(["model", "loss", line_by, x])[metric].agg(["mean", "std"]).reset_index()
                )
                for (model, loss, value), line in stats.groupby(["model", "loss", line_by]):
                    fixed = "" if value == -1.0 else f", {SYMBOLS[line_by]} = {value:g}"
                    ax.errorbar(
                        line[x], line["mean"], yerr=np.nan_to_num(line["std"]), capsize=2, marker="o",
                        label=f"{model} {loss}{fixed}",
                    )  # fmt: skip
                ax.set_xlabel({"alpha": "filter strength", "tau": "temperature"}[x] + f" {SYMBOLS[x]}")
                ax.set_ylabel(f"test {metric}")
                ax.set_title(dataset)
                ax.legend(fontsize=7)
        fig.suptitle(f"DirectSpec(+) sensitivity: test {metric} against α and τ")
        save_figure(fig, pdf, png)


def draw(function: str, files: Sequence[PathLike], pdf: PathLike, png: PathLike, **context) -> None:
    """Draw a figure of the catalogue (specrec.outputs) by the name of its plotting function, passing it
    only the parts of the study's `context` it takes (recipes and models for colours and line styles, the
    selection of tuned settings): one adapter for every figure."""
    plot = globals()[function]
    accepted = inspect.signature(plot).parameters
    plot(files, pdf, png, **{key: value for key, value in context.items() if key in accepted})
