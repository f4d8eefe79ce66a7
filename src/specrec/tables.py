"""Result tables built only from per-run result files (metrics.json, spectrum.json, stats.csv).

Tables never retrain or open checkpoints: every number is an aggregate over the small files each run
leaves behind, so a table can be rebuilt in seconds and always matches the figures.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from specrec import io
from specrec.runs import (
    convergence_frame,
    epochs_frame,
    flatten,
    identity_of,
    metrics_frame,
    reference_of,
    require_files,
    run_frame,
    run_identity,
    spectrum_frame,
)
from specrec.tuning import apply_selection, selection_frame

PathLike = str | os.PathLike
RUN_KEYS = ["dataset", "model", "recipe"]

# the Recall@20 definitions a table may show (RESEARCH.md §1.1): (metrics.json name, Markdown label)
RECALLS = {
    "recall": "Recall@20",  # |L∩T| / |T|
    "recall_truncated": "Recall-trunc@20",  # |L∩T| / min(K, |T|): DirectSpec's code
    "recall_micro": "Recall-micro@20",  # Σ|L∩T| / Σmin(K, |T|): StableRankReg's code
}
DEFAULT_RECALLS = ("recall", "recall_truncated")
BOLD_METRIC = "ndcg@20"


def result_metrics(runs: pd.DataFrame, recalls: Sequence[str] = DEFAULT_RECALLS) -> dict[str, str]:
    """(column in metrics.json, column label) of the main table: the chosen recalls at 20, then NDCG at
    every cut-off the runs were tested at (train.ks; every run also has K = 20)."""
    unknown = [name for name in recalls if name not in RECALLS]
    if unknown:
        raise ValueError(f"unknown recall {unknown}; valid: {', '.join(RECALLS)}")
    cutoffs = sorted(int(c.split("@")[1]) for c in runs.columns if re.fullmatch(r"test_ndcg@\d+", c))
    return {f"{name}@20": RECALLS[name] for name in recalls} | {f"ndcg@{k}": f"NDCG@{k}" for k in cutoffs}


SPECTRUM_COLUMNS = {
    "user_stable_rank": "User SR",
    "user_stable_rank_normalised": "User SR / d",
    "user_effective_rank": "User eff. rank",
    "item_stable_rank": "Item SR",
    "item_stable_rank_normalised": "Item SR / d",
    "item_effective_rank": "Item eff. rank",
    "user_uniformity": "User unif.",
    "item_uniformity": "Item unif.",
    "alignment": "Alignment",
}


def dataset_from_stats_path(path: PathLike) -> tuple[str, int | None]:
    """(dataset, seed) of `.../data/{dataset}/split/seed{seed}/stats.csv`, or (dataset, None) for the
    statistics as prepared, `.../data/{dataset}/stats.csv`."""
    match = re.search(r"(?:^|/)data/([^/]+)/(?:split/seed(\d+)/)?stats\.csv$", Path(path).as_posix())
    if match is None:
        raise ValueError(f"not a data/{{dataset}}/[split/seed{{seed}}/]stats.csv path: {str(path)!r}")
    return match.group(1), int(match.group(2)) if match.group(2) else None


def _order_runs(frame: pd.DataFrame, recipes: Sequence[str] | None) -> pd.DataFrame:
    """Sort rows by dataset, model and the configured recipe order (unknown recipes last, by name)."""
    order = {r: i for i, r in enumerate(recipes or [])}
    rank = frame["recipe"].map(order).fillna(len(order))
    return (
        frame.assign(_rank=rank)
        .sort_values(["dataset", "model", "_rank", "recipe"])
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _mean_std(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Mean and sample std (ddof=1, blank for one seed) over seeds for each (dataset, model, recipe)."""
    grouped = frame.groupby(RUN_KEYS, sort=False)[list(columns)]
    stats = grouped.agg(["mean", "std"])
    stats.columns = [f"{col}_{stat}" for col, stat in stats.columns]
    seeds = frame.groupby(RUN_KEYS, sort=False)["seed"].nunique().rename("n_seeds")
    return pd.concat([seeds, stats], axis=1).reset_index()


def _fmt(values: pd.Series, digits: int) -> pd.Series:
    return values.map(lambda v: "–" if pd.isna(v) else f"{v:.{digits}f}")


def _pm(mean: pd.Series, std: pd.Series, digits: int = 4) -> pd.Series:
    """'mean ± std', or just 'mean' when the std is undefined (a single seed)."""
    suffix = (" ± " + _fmt(std, digits)).where(std.notna(), "")
    return _fmt(mean, digits) + suffix


def to_markdown(frame: pd.DataFrame, right_align: Sequence[str] = ()) -> str:
    """A GitHub-flavoured Markdown table (no `tabulate` dependency)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---:" if c in right_align else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
                 "{": r"\{", "}": r"\}"}  # fmt: skip


def to_latex(frame: pd.DataFrame, right_align: Sequence[str] = ()) -> str:
    """A booktabs tabular of the Markdown view: **bold** becomes \\textbf, ± becomes $\\pm$, LaTeX's special
    characters are escaped (no jinja2 dependency)."""

    def cell(value) -> str:
        text = re.sub(r"[\\&%_#${}]", lambda m: LATEX_ESCAPES[m.group()], str(value))  # one pass
        text = text.replace("±", r"$\pm$").replace("–", "--")
        return re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", text)

    spec = "".join("r" if c in right_align else "l" for c in frame.columns)
    rows = [" & ".join(cell(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    header = " & ".join(cell(c) for c in frame.columns) + r" \\"
    body = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", header, r"\midrule", *rows, r"\bottomrule"]
    return "\n".join([*body, r"\end{tabular}"]) + "\n"


def _write(frame: pd.DataFrame, md: pd.DataFrame, csv_out, md_out, tex_out, numeric: list[str]):
    """The full-precision CSV, the Markdown view and, given `tex_out`, the same view as a LaTeX (booktabs)
    table. (Every table function takes the three paths; the rules pass all of them.)"""
    io.write_csv(csv_out, frame)
    io.write_text(md_out, to_markdown(md, right_align=numeric))
    if tex_out is not None:
        io.write_text(tex_out, to_latex(md, right_align=numeric))


def results_table(
    metrics_files: Sequence[PathLike],
    csv_out: PathLike,
    md_out: PathLike,
    recipes: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
    baseline: str = "bpr",
    per_user_files: Sequence[PathLike] = (),
    recalls: Sequence[str] = DEFAULT_RECALLS,
    tex_out: PathLike | None = None,
) -> pd.DataFrame:
    """Test metrics per (dataset, model, recipe) as mean ± std over seeds, with the best of each (dataset,
    model) in bold, the tuned setting, and the change of NDCG@20 against the reference recipe (an add-on
    run's base, else `baseline`) with a paired t-test over the seeds both ran and, given the runs'
    per_user.parquet, a Wilcoxon signed-rank test over users.

    `recalls` names the Recall@20 definitions shown (`RECALLS`; config `report.recalls`).
    The CSV keeps full precision for downstream use; the Markdown is the human-readable view.
    """
    runs = apply_selection(metrics_frame(metrics_files), selection)
    shown = result_metrics(runs, recalls)
    runs = runs.rename(columns={f"test_{m}": m for m in shown})
    missing = [m for m in [*shown, "best_epoch", "train_seconds"] if m not in runs]
    if missing:
        raise ValueError(f"metrics.json files lack fields: {', '.join(missing)}")
    table = _order_runs(_mean_std(runs, [*shown, "best_epoch", "train_seconds"]), recipes)
    by_run = runs.assign(split=split_labels(runs)).groupby(RUN_KEYS)
    labels = table.set_index(RUN_KEYS).index
    table.insert(3, "split", labels.map(by_run["split"].agg(lambda s: ", ".join(sorted(set(s))))))
    table.insert(4, "setting", labels.map(by_run["setting"].first()))
    table = table.join(_against_reference(runs, table, baseline))
    table["p_users_wilcoxon"] = np.nan
    if len(per_user_files):
        users = comparison_frame(per_user_files, BOLD_METRIC, selection, baseline).set_index(RUN_KEYS)
        table["p_users_wilcoxon"] = table.set_index(RUN_KEYS).index.map(users["p_users_wilcoxon"])

    md = table[["dataset", "model", "recipe", "setting", "split", "n_seeds"]]
    md = md.set_axis(["Dataset", "Model", "Recipe", "Setting", "Split", "Seeds"], axis=1)
    if not table["setting"].astype(bool).any():
        md = md.drop(columns="Setting")
    for metric, label in shown.items():
        md[label] = _bold_best(table, metric, _pm(table[f"{metric}_mean"], table[f"{metric}_std"]))
    md["vs"] = table["reference"].fillna("–")
    md["Δ NDCG@20"] = table["relative_change"].map(lambda v: "–" if pd.isna(v) else f"{100 * v:+.1f}%")
    md["p (seeds)"] = table["p_seeds_ttest"].map(_p_value)
    if len(per_user_files):
        md["p (users)"] = table["p_users_wilcoxon"].map(_p_value)
    md["Best epoch"] = _fmt(table["best_epoch_mean"], 1)
    md["Train (s)"] = _fmt(table["train_seconds_mean"], 1)
    table["flags"] = pd.Series(labels.map(cell_flags(runs)), index=table.index, dtype=object).fillna("")
    if table["flags"].astype(bool).any():
        md["Flags"] = table["flags"].map(lambda text: f"⚠ {text}" if text else "")
    numeric = [
        *shown.values(),
        "Seeds",
        "Δ NDCG@20",
        "p (seeds)",
        "p (users)",
    ]
    _write(table, md, csv_out, md_out, tex_out, numeric=[*numeric, "Best epoch", "Train (s)"])
    return table


def cell_flags(runs: pd.DataFrame) -> pd.Series:
    """Per (dataset, model, recipe): the runs' flags (specrec.train.run_flags) with how many seeds raised
    each, e.g. 'at or below popularity (3/3)'; '' for a cell without any."""

    def describe(cell: pd.DataFrame) -> str:
        raised = [flag for flags in cell for flag in (flags if isinstance(flags, list) else [])]
        counts = pd.Series(raised, dtype=object).value_counts()
        return "; ".join(
            f"{flag.replace('_', ' ')} ({n}/{len(cell)})" for flag, n in counts.sort_index().items()
        )

    if "flags" not in runs:
        return pd.Series(dtype=str)
    return runs.groupby(RUN_KEYS)["flags"].agg(describe)


def _bold_best(table: pd.DataFrame, metric: str, shown: pd.Series) -> pd.Series:
    """Bold the best mean of each (dataset, model) block that compares more than one recipe."""
    means = table[f"{metric}_mean"]
    blocks = table.groupby(["dataset", "model"])[f"{metric}_mean"]
    best = (means == blocks.transform("max")) & (blocks.transform("size") > 1)
    return ("**" + shown + "**").where(best, shown)


def reference_recipe(recipe: str, baseline: str) -> str | None:
    """What a recipe is compared with: its base for an add-on run, else the baseline (None for itself)."""
    base = reference_of(recipe)
    if base is not None:
        return base
    return None if recipe in (baseline, "none") else baseline


def _against_reference(runs: pd.DataFrame, table: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per row of `table`: the reference recipe, the relative change of mean test NDCG@20 and the p-value of
    a paired t-test over the seeds both ran (blank with fewer than two)."""
    from scipy import stats  # only the comparisons need scipy

    scores = runs.set_index([*RUN_KEYS, "seed"])[BOLD_METRIC]
    rows = []
    for dataset, model, recipe in table[RUN_KEYS].itertuples(index=False):
        reference = reference_recipe(recipe, baseline)
        row = {"reference": None, "relative_change": np.nan, "p_seeds_ttest": np.nan}
        if reference is not None and (dataset, model, reference) in scores.droplevel("seed").index:
            ours, theirs = scores.loc[(dataset, model, recipe)], scores.loc[(dataset, model, reference)]
            paired = pd.concat([ours, theirs], axis=1, join="inner", keys=["ours", "theirs"])
            row["reference"] = reference
            row["relative_change"] = ours.mean() / theirs.mean() - 1
            if len(paired) > 1 and (paired["ours"] != paired["theirs"]).any():
                row["p_seeds_ttest"] = stats.ttest_rel(paired["ours"], paired["theirs"]).pvalue
        rows.append(row)
    return pd.DataFrame(rows, index=table.index)


def tuning_table(
    metrics_files: Sequence[PathLike],
    csv_out: PathLike,
    md_out: PathLike,
    metric: str = "ndcg@20",
    tex_out: PathLike | None = None,
) -> pd.DataFrame:
    """Every setting of every (dataset, model, recipe) with its mean ± std validation `metric` over seeds;
    the selected one (the best mean) is marked. Test metrics are not read."""
    table = selection_frame(metrics_frame(metrics_files), metric)
    column = f"valid_{metric}"
    md = table[["dataset", "model", "recipe", "n_seeds"]]
    md = md.set_axis(["Dataset", "Model", "Recipe", "Seeds"], axis=1)
    md.insert(3, "Setting", table["setting"].where(table["setting"] != "", "–"))
    shown = _pm(table[column], table[f"{column}_std"])
    md[f"Valid {metric}"] = ("**" + shown + "**").where(table["selected"], shown)
    md["Selected"] = table["selected"].map({True: "yes", False: ""})
    _write(table, md, csv_out, md_out, tex_out, numeric=["Seeds", f"Valid {metric}"])
    return table


def split_labels(runs: pd.DataFrame) -> pd.Series:
    """'random_edge 0.8/0.1/0.1' or 'provided (+0.1 of train as valid)' per run, from metrics.json's split."""
    if "split_protocol" not in runs:
        return pd.Series("unknown", index=runs.index)

    def label(row) -> str:
        if row["split_protocol"] == "provided":
            return f"provided (+{row['split_valid_fraction']:g} of train as valid)"
        fractions = row.get("split_fractions")
        shown = "/".join(f"{f:g}" for f in fractions) if isinstance(fractions, list) else "?"
        return f"{row['split_protocol']} {shown}"

    return runs.apply(label, axis=1)


COUNT_COLUMNS = [
    "Users",
    "Items",
    "Interactions",
    "Raw rows",
    "Skipped rows",
    "Entities",
    "Relations",
    "Triples",
]


def dataset_table(
    stats_files: Sequence[PathLike],
    csv_out: PathLike,
    md_out: PathLike,
    kg_stats_files: Sequence[PathLike] = (),
    tex_out: PathLike | None = None,
) -> pd.DataFrame:
    """Stack dataset statistics with dataset and seed columns: as prepared (no seed; a provided split's
    parts) and per seeded split (all/train/valid/test).

    kg_stats_files (`.../data/{dataset}/kg/stats.csv`, specrec.kg) add the item KG's entities,
    relations, triples and items_with_triples as columns of the dataset's as-prepared `all` row (one
    row per dataset then reads like KGCN's Table 1); other rows leave them blank.
    """
    files = require_files(stats_files, "stats.csv")
    keys = [dataset_from_stats_path(f) for f in files]
    frames = [pd.read_csv(f).assign(dataset=d, seed=s) for f, (d, s) in zip(files, keys, strict=True)]
    table = pd.concat(frames, ignore_index=True)
    table = table[["dataset", "seed", *[c for c in table.columns if c not in ("dataset", "seed")]]]
    table = _with_kg_stats(table, kg_stats_files)

    md = table.rename(columns=lambda c: c.capitalize().replace("_", " "))
    for col in [*COUNT_COLUMNS, "Items with triples"]:
        if col in md:
            md[col] = md[col].map(lambda n: "" if pd.isna(n) else f"{int(n):,}")
    if "Density" in md:
        md["Density"] = md["Density"].map(lambda d: f"{100 * d:.4g}%")
    md["Seed"] = md["Seed"].map(lambda s: "as prepared" if pd.isna(s) else str(int(s)))
    _write(table, md, csv_out, md_out, tex_out, numeric=[*COUNT_COLUMNS, "Density", "Items with triples"])
    return table


def dataset_from_kg_stats_path(path: PathLike) -> str:
    """The dataset of `.../data/{dataset}/kg/stats.csv`."""
    match = re.search(r"(?:^|/)data/([^/]+)/kg/stats\.csv$", Path(path).as_posix())
    if match is None:
        raise ValueError(f"not a data/{{dataset}}/kg/stats.csv path: {str(path)!r}")
    return match.group(1)


def _with_kg_stats(table: pd.DataFrame, kg_stats_files: Sequence[PathLike]) -> pd.DataFrame:
    if len(kg_stats_files) == 0:
        return table
    kg = pd.concat(
        [pd.read_csv(f).assign(dataset=dataset_from_kg_stats_path(f)) for f in kg_stats_files],
        ignore_index=True,
    ).set_index("dataset")
    prepared_all = table["seed"].isna() & (table["split"] == "all")
    missing = sorted(set(kg.index) - set(table.loc[prepared_all, "dataset"]))
    if missing:
        raise ValueError(
            f"KG statistics of {', '.join(missing)} without the dataset's data/{{dataset}}/stats.csv"
        )
    for column in kg.columns:
        table[column] = table["dataset"].map(kg[column]).where(prepared_all).astype("Int64")
    return table


def spectrum_table(
    spectrum_files: Sequence[PathLike],
    csv_out: PathLike,
    md_out: PathLike,
    recipes: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
    tex_out: PathLike | None = None,
) -> pd.DataFrame:
    """Spectrum summaries per (dataset, model, recipe), averaged over seeds.

    Stable rank ||E||_F^2/||E||_2^2 counts how many directions carry the energy; divided by the
    dimension d it is comparable across models; uniformity and alignment are lower-is-better.
    """
    runs = apply_selection(spectrum_frame(spectrum_files), selection)
    for col in SPECTRUM_COLUMNS:
        runs[col] = pd.to_numeric(runs[col], errors="coerce") if col in runs else np.nan
    means = runs.groupby(RUN_KEYS, sort=False)[["dim", *SPECTRUM_COLUMNS]].mean()
    seeds = runs.groupby(RUN_KEYS, sort=False)["seed"].nunique().rename("n_seeds")
    table = _order_runs(pd.concat([seeds, means], axis=1).reset_index(), recipes)
    table["dim"] = table["dim"].round().astype("Int64")

    md = table[["dataset", "model", "recipe", "n_seeds", "dim"]].set_axis(
        ["Dataset", "Model", "Recipe", "Seeds", "d"], axis=1
    )
    for col, label in SPECTRUM_COLUMNS.items():
        md[label] = _fmt(table[col], 2 if col.endswith(("_stable_rank", "_effective_rank")) else 3)
    _write(table, md, csv_out, md_out, tex_out, numeric=["Seeds", "d", *SPECTRUM_COLUMNS.values()])
    return table


def convergence_table(
    epochs_files: Sequence[PathLike],
    csv_out: PathLike,
    md_out: PathLike,
    share: float = 0.95,
    selection: pd.DataFrame | None = None,
    tex_out: PathLike | None = None,
):
    """Per run: best validation NDCG@20, and the epoch and time at which `share` of it was first reached.

    The time is the wall clock from the start of training (training and per-epoch evaluation), and the
    training time alone; this is how the stable-rank warm start's speed-up is measured (WWW 2025).
    """
    table = convergence_frame(apply_selection(epochs_frame(epochs_files), selection), share)
    md = table.rename(
        columns={
            "dataset": "Dataset", "model": "Model", "recipe": "Recipe", "seed": "Seed",
            "best_valid_ndcg@20": "Best valid NDCG@20", "best_epoch": "Best epoch",
            "epochs_to_95": f"Epochs to {share:.0%}", "seconds_to_95": f"Seconds to {share:.0%}",
            "train_seconds_to_95": f"Train s to {share:.0%}",
        }
    )  # fmt: skip
    md["Best valid NDCG@20"] = _fmt(table["best_valid_ndcg@20"], 4)
    for column in (f"Seconds to {share:.0%}", f"Train s to {share:.0%}"):
        md[column] = _fmt(md[column], 1)
    _write(
        table,
        md,
        csv_out,
        md_out,
        tex_out,
        numeric=[c for c in md.columns if c not in ("Dataset", "Model", "Recipe")],
    )
    return table


# (column, Markdown label): paper 1's Tables 2-4 in one row per (dataset, model, recipe)
BEYOND_ACCURACY = {
    "auc": "AUC",
    "f1": "F1",
    "auc_batched": "AUC (batches)",  # KGCN's protocol: the mean over test batches (train.ctr_batch_size)
    "f1_batched": "F1 (batches)",
    "recall@20": "Recall@20",
    "ndcg@20": "NDCG@20",
    "ild_genre": "ILD genre@20",
    "ild_text": "ILD text@20",
    "inter_list": "Inter-list@20",
    "coverage": "Coverage@20",
    "cold_ndcg@20": "Cold NDCG@20",
}


def beyond_accuracy_frame(
    metrics_files: Sequence[PathLike], diversity_files: Sequence[PathLike], activity_files: Sequence[PathLike]
) -> pd.DataFrame:
    """One row per run: CTR AUC/F1, Recall/NDCG@20, the diversity of the top-20 lists and the NDCG@20 of
    the cold-start users (the first activity bin, the bottom 1 % by training interactions)."""
    rows = []
    triples = zip(
        require_files(metrics_files, "metrics.json"),
        require_files(diversity_files, "diversity.json"),
        require_files(activity_files, "activity.csv"),
        strict=True,
    )
    for metrics_file, diversity_file, activity_file in triples:
        metrics, diversity = io.read_json(metrics_file), io.read_json(diversity_file).get("20", {})
        cold = pd.read_csv(activity_file).iloc[0]
        row = identity_of(metrics) | metrics.get("test_ctr", {})
        batched = metrics.get("test_ctr_batched", {})
        row |= {f"{key}_batched": batched[key] for key in ("auc", "f1") if key in batched}
        row |= {key: metrics["test"].get(key) for key in ("recall@20", "ndcg@20")}
        row |= {key: diversity.get(key) for key in ("ild_genre", "ild_text", "inter_list", "coverage")}
        rows.append(row | {"cold_ndcg@20": cold.get("ndcg@20"), "cold_bin": cold["bin"]})
    return pd.DataFrame(rows)


def beyond_accuracy_table(
    metrics_files: Sequence[PathLike],
    diversity_files: Sequence[PathLike],
    activity_files: Sequence[PathLike],
    csv_out: PathLike,
    md_out: PathLike,
    recipes: Sequence[str] | None = None,
    selection: pd.DataFrame | None = None,
    tex_out: PathLike | None = None,
) -> pd.DataFrame:
    """Accuracy, CTR, diversity and cold-start quality per (dataset, model, recipe), mean ± std over seeds."""
    runs = apply_selection(beyond_accuracy_frame(metrics_files, diversity_files, activity_files), selection)
    columns = [c for c in BEYOND_ACCURACY if c in runs]
    runs[columns] = runs[columns].apply(pd.to_numeric, errors="coerce")
    table = _order_runs(_mean_std(runs, columns), recipes)
    md = table[["dataset", "model", "recipe", "n_seeds"]].set_axis(
        ["Dataset", "Model", "Recipe", "Seeds"], axis=1
    )
    for column in columns:
        md[BEYOND_ACCURACY[column]] = _pm(table[f"{column}_mean"], table[f"{column}_std"])
    _write(table, md, csv_out, md_out, tex_out, numeric=["Seeds", *(BEYOND_ACCURACY[c] for c in columns)])
    return table


def results_index(
    metrics_files: Sequence[PathLike],
    spectrum_files: Sequence[PathLike],
    diversity_files: Sequence[PathLike],
    csv_out: PathLike,
    selection: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per run with every number it left behind, for analysis in pandas: the run's identity, its
    metrics.json flattened (valid_*, test_*, test_ctr_*, best_epoch, train_seconds, split and provenance),
    the scalar fields of spectrum.json (singular values left out) and diversity.json (`div{K}_*`). With a
    selection, `cell` and `setting` split a tuned run's name and `selected` marks the reported setting."""
    runs = metrics_frame(metrics_files)
    spectra = spectrum_frame(spectrum_files)
    spectra = spectra[[c for c in spectra.columns if not c.endswith("singular_values")]]
    diversity = flatten(
        [
            run_identity(f) | {f"div{k}": values for k, values in io.read_json(f).items()}
            for f in require_files(diversity_files, "diversity.json")
        ]
    )
    keys = ["dataset", "model", "recipe", "seed"]
    index = runs.merge(spectra, on=keys, how="left", suffixes=("", "_spectrum"))
    index = index.merge(diversity, on=keys, how="left", validate="one_to_one")
    if selection is not None:
        tuned = selection[["dataset", "model", "run", "recipe", "setting", "selected"]]
        tuned = tuned.rename(columns={"run": "recipe", "recipe": "cell"})
        index = index.merge(tuned, on=["dataset", "model", "recipe"], how="left", validate="many_to_one")
        keys = [*keys, "cell", "setting", "selected"]
    index = index[keys + [c for c in index.columns if c not in keys]].sort_values(keys[:4])
    io.write_csv(csv_out, index)
    return index


def comparison_frame(
    per_user_files: Sequence[PathLike],
    metric: str = "ndcg@20",
    selection: pd.DataFrame | None = None,
    baseline: str | None = None,
) -> pd.DataFrame:
    """Every recipe against its reference in the same dataset and model (an add-on run against its base,
    `bpr+sr_warm` against `bpr`; with a `baseline`, every other recipe against it): the relative change of
    the mean test `metric`, a paired t-test over the seeds both have (needs two), and a Wilcoxon signed-rank
    test over the per-user values paired by (seed, user), the test that has power with one seed."""
    from scipy import stats  # only the comparisons need scipy

    def read(path):
        return pd.read_parquet(path, columns=["user", metric])

    runs = apply_selection(run_frame(per_user_files, read, "per_user.parquet"), selection)
    columns = ["dataset", "model", "recipe", "base", "n_seeds", "n_pairs", metric, f"{metric}_base",
               "relative_change", "p_seeds_ttest", "p_users_wilcoxon"]  # fmt: skip
    rows = []
    for (dataset, model, recipe), run in runs.groupby(RUN_KEYS, sort=True):
        base = reference_recipe(recipe, baseline) if baseline else reference_of(recipe)
        of_base = runs[(runs["dataset"] == dataset) & (runs["model"] == model) & (runs["recipe"] == base)]
        if base is None or of_base.empty:
            continue
        paired = run.merge(of_base, on=["seed", "user"], suffixes=("", "_base"))
        seeds = paired.groupby("seed")[[metric, f"{metric}_base"]].mean()
        t_p = stats.ttest_rel(seeds[metric], seeds[f"{metric}_base"]).pvalue if len(seeds) > 1 else np.nan
        differs = paired[metric] != paired[f"{metric}_base"]
        w_p = 1.0  # identical per-user values: no evidence of a difference (wilcoxon rejects empty input)
        if differs.any():
            w_p = stats.wilcoxon(paired[metric][differs], paired[f"{metric}_base"][differs]).pvalue
        mean, mean_base = seeds[metric].mean(), seeds[f"{metric}_base"].mean()
        rows.append(
            {
                "dataset": dataset, "model": model, "recipe": recipe, "base": base, "n_seeds": len(seeds),
                "n_pairs": len(paired), f"{metric}": mean, f"{metric}_base": mean_base,
                "relative_change": mean / mean_base - 1, "p_seeds_ttest": t_p, "p_users_wilcoxon": w_p,
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=columns)  # the columns also head an empty table


def significance_table(
    per_user_files: Sequence[PathLike],
    csv_out: PathLike,
    md_out: PathLike,
    metric: str = "ndcg@20",
    selection: pd.DataFrame | None = None,
    tex_out: PathLike | None = None,
) -> pd.DataFrame:
    """Every add-on run (`base+addon`) against its base recipe (`comparison_frame`)."""
    table = comparison_frame(per_user_files, metric, selection)
    md = table[["dataset", "model", "recipe", "base", "n_seeds"]].set_axis(
        ["Dataset", "Model", "Recipe", "Against", "Seeds"], axis=1
    )
    md[f"Test {metric}"] = _fmt(table[metric], 4) + " vs " + _fmt(table[f"{metric}_base"], 4)
    md["Change"] = table["relative_change"].map(lambda v: f"{100 * v:+.1f}%")
    md["p (seeds, paired t)"] = table["p_seeds_ttest"].map(_p_value)
    md["p (users, Wilcoxon)"] = table["p_users_wilcoxon"].map(_p_value)
    _write(
        table,
        md,
        csv_out,
        md_out,
        tex_out,
        numeric=["Seeds", "Change", "p (seeds, paired t)", "p (users, Wilcoxon)"],
    )
    return table


def _p_value(p: float) -> str:
    return "–" if pd.isna(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")
