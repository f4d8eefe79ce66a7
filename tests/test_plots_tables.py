"""Figures and tables from synthetic per-run result files (test fixtures only)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from specrec import plots, runs, tables

RECIPES = ["bpr", "softmax", "bpr_sr", "none"]
DIM = 16


def run_dir(root: Path, dataset: str, model: str, recipe: str, seed: int) -> Path:
    """A run's folder with the identity its metrics.json records (write_run adds the metrics)."""
    path = root / "results" / "runs" / dataset / model / recipe / f"seed{seed}"
    path.mkdir(parents=True, exist_ok=True)
    identity = {"dataset": dataset, "model": model, "recipe": recipe, "seed": seed}
    if not (path / "metrics.json").exists():
        (path / "metrics.json").write_text(json.dumps(identity))
    return path


def side(decay: float, shift: float) -> dict:
    sigma = np.exp(-decay * np.arange(DIM)) * (10 + shift)
    energy = (sigma**2).sum() / sigma[0] ** 2
    return {
        "singular_values": sigma.tolist(),
        "stable_rank": float(energy),
        "stable_rank_normalised": float(energy / DIM),
        "effective_rank": float(energy + 1),
        "uniformity": -2.0 - shift - decay,
    }


def write_run(
    root: Path, dataset: str, model: str, recipe: str, seed: int, ndcg: float, decay: float
) -> None:
    """epochs.csv + metrics.json + spectrum.json for one synthetic run."""
    folder = run_dir(root, dataset, model, recipe, seed)
    identity = {"dataset": dataset, "model": model, "recipe": recipe, "seed": seed}
    untrained = model == "popularity"
    epochs = np.array([0]) if untrained else np.arange(1, 9)
    progress = 1 - np.exp(-epochs / 3)
    pd.DataFrame(
        {
            "epoch": epochs,
            "loss": np.nan if untrained else 1 / epochs,
            "valid_recall@20": 2 * ndcg * progress if not untrained else [ndcg],
            "valid_ndcg@20": ndcg * progress if not untrained else [ndcg],
            "epoch_seconds": 0.5,
            "elapsed_seconds": 0.5 * np.maximum(epochs, 1),
            "user_stable_rank": 1.0 if untrained else DIM / (1 + decay * epochs) + seed,
            "item_stable_rank": 1.0 if untrained else DIM / (1 + 2 * decay * epochs) + seed,
            "user_effective_rank": 1.0,
            "item_effective_rank": 1.0,
        }
    ).to_csv(folder / "epochs.csv", index=False)
    test = {
        f"{m}@{k}": ndcg * (1 + i)
        for i, m in enumerate(["recall", "recall_truncated", "recall_micro", "ndcg"])
        for k in (10, 20, 50)
    }
    metrics = identity | {
        "best_epoch": 0 if untrained else 5 + seed,
        "epochs_run": int(epochs.max()),
        "train_seconds": 10.0 * (seed + 1),
        "device": "cpu",
        "valid": {"ndcg@20": ndcg},
        "test": test,
        "test_ctr": {"auc": 0.5 + ndcg, "f1": 0.4 + ndcg},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    dim = 1 if untrained else DIM
    spectrum = identity | {
        "dim": dim,
        "alignment": 0.5 + decay + 0.01 * seed,
        "user": side(decay, seed) if not untrained else {**side(0, 0), "singular_values": [3.0]},
        "item": side(2 * decay, seed) if not untrained else {**side(0, 0), "singular_values": [2.0]},
    }
    (folder / "spectrum.json").write_text(json.dumps(spectrum))
    diversity = {
        "20": {"ild_genre": 0.5 + decay, "ild_text": 0.8, "inter_list": 0.9 - decay, "coverage": ndcg}
    }
    (folder / "diversity.json").write_text(json.dumps(diversity))
    pd.DataFrame(
        {
            "bin": ["bottom 1% (1–2)", "3–9", "10–99"],
            "n_users": [1, 5, 5],
            "ndcg@20": [ndcg / 2, ndcg, 2 * ndcg],
        }
    ).to_csv(folder / "activity.csv", index=False)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """ml-toy: two models x three recipes (two seeds for bpr), plus an untrained popularity run."""
    for model, offset in (("mf", 0.0), ("lightgcn", 0.02)):
        for recipe, decay in (("bpr", 0.5), ("softmax", 0.1), ("bpr_sr", 0.2)):
            seeds = (0, 1) if recipe == "bpr" else (0,)
            for seed in seeds:
                write_run(
                    tmp_path,
                    "ml-toy",
                    model,
                    recipe,
                    seed,
                    ndcg=0.1 + offset + 0.1 * seed + decay / 10,
                    decay=decay,
                )
    write_run(tmp_path, "ml-toy", "popularity", "none", 0, ndcg=0.05, decay=0.0)
    return tmp_path


def files(root: Path, name: str, under: str = "") -> list[Path]:
    return sorted((root / "results" / "runs" / under).rglob(name))


def assert_written(*paths: Path) -> None:
    for path in paths:
        assert path.exists() and path.stat().st_size > 0, path
        assert not list(path.parent.glob(f".{path.name}.*.tmp")), "temporary file left behind"


# ---------------------------------------------------------------- helpers


def test_a_runs_identity_is_what_its_metrics_json_records_not_its_path(tmp_path):
    from specrec.runs import run_identity

    write_run(tmp_path, "ml-1m", "mf", "bpr~lr=0.01", 3, ndcg=0.1, decay=0.5)
    folder = tmp_path / "results/runs/ml-1m/mf/bpr~lr=0.01/seed3"
    expected = {"dataset": "ml-1m", "model": "mf", "recipe": "bpr~lr=0.01", "seed": 3}
    moved = tmp_path / "elsewhere"
    folder.rename(moved)  # a run folder copied anywhere keeps its identity
    assert run_identity(moved / "epochs.csv") == expected
    (moved / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no metrics.json; train the run again"):
        run_identity(moved / "epochs.csv")


def test_recipe_colours_follow_config_order():
    colours = plots.recipe_colours(RECIPES)
    assert list(colours) == RECIPES
    assert len({mcolors.to_hex(c) for c in colours.values()}) == len(RECIPES)
    assert colours == plots.recipe_colours([*RECIPES, "bpr"])  # duplicates do not shift colours


# ---------------------------------------------------------------- figures


def capture_colours(monkeypatch) -> list[dict[str, str]]:
    """Record {model|recipe: hex colour} of every identified artist in each saved figure."""
    seen: list[dict[str, str]] = []
    original = plots.save_figure

    def spy(fig, pdf, png):
        lines = [line for ax in fig.axes for line in ax.lines if line.get_gid()]
        seen.append({line.get_gid(): mcolors.to_hex(line.get_color()) for line in lines})
        original(fig, pdf, png)

    monkeypatch.setattr(plots, "save_figure", spy)
    return seen


@pytest.mark.parametrize(
    ("function", "source"),
    [
        (plots.plot_spectrum, "spectrum.json"),
        (plots.plot_stable_rank, "epochs.csv"),
        (plots.plot_validation_curve, "epochs.csv"),
        (plots.plot_alignment_uniformity, "spectrum.json"),
        (plots.plot_activity, "activity.csv"),
        (plots.plot_diversity, "diversity.json"),
    ],
)
def test_figures_are_written(results, tmp_path, function, source):
    pdf, png = tmp_path / "fig" / "out.pdf", tmp_path / "fig" / "out.png"
    function(files(results, source), pdf, png, RECIPES)
    assert_written(pdf, png)
    assert pdf.read_bytes().startswith(b"%PDF") and png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "function",
    [
        plots.plot_spectrum,
        plots.plot_stable_rank,
        plots.plot_validation_curve,
        plots.plot_alignment_uniformity,
        plots.plot_activity,
        plots.plot_diversity,
    ],
)
def test_figures_reject_empty_input(tmp_path, function):
    with pytest.raises(ValueError, match="no .* files given"):
        function([], tmp_path / "a.pdf", tmp_path / "a.png", RECIPES)
    assert not (tmp_path / "a.pdf").exists()


def test_colours_consistent_across_figures(results, tmp_path, monkeypatch):
    seen = capture_colours(monkeypatch)
    expected = {r: mcolors.to_hex(c) for r, c in plots.recipe_colours(RECIPES).items()}
    plots.plot_spectrum(files(results, "spectrum.json"), tmp_path / "s.pdf", tmp_path / "s.png", RECIPES)
    # a figure that only sees one recipe must still give it its configured colour
    only_sr = [f for f in files(results, "epochs.csv") if "bpr_sr" in f.parts]
    plots.plot_stable_rank(only_sr, tmp_path / "r.pdf", tmp_path / "r.png", RECIPES)
    spectrum_colours, rank_colours = seen
    assert spectrum_colours["mf|bpr_sr"] == rank_colours["mf|bpr_sr"] == expected["bpr_sr"]
    for gid, colour in spectrum_colours.items():
        assert colour == expected[gid.split("|")[1]]
    assert "popularity|none" not in spectrum_colours  # dim == 1 is skipped


def test_stable_rank_skips_untrained_only(results, tmp_path):
    popularity = files(results, "epochs.csv", under="ml-toy/popularity")
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.plot_stable_rank(popularity, tmp_path / "a.pdf", tmp_path / "a.png", RECIPES)


# ---------------------------------------------------------------- tables


def test_results_table_means_and_stds(results, tmp_path):
    csv, md = tmp_path / "t" / "results.csv", tmp_path / "t" / "results.md"
    tables.results_table(files(results, "metrics.json"), csv, md, recipes=RECIPES)
    assert_written(csv, md)
    table = pd.read_csv(csv).set_index(["dataset", "model", "recipe"])
    bpr = table.loc[("ml-toy", "mf", "bpr")]
    ndcg = np.array([0.1 + 0.05, 0.2 + 0.05])  # seeds 0 and 1; test ndcg = 4 x the fixture value
    assert bpr["n_seeds"] == 2
    assert bpr["ndcg@20_mean"] == pytest.approx(4 * ndcg.mean())
    assert bpr["ndcg@20_std"] == pytest.approx(np.std(4 * ndcg, ddof=1))
    assert bpr["recall@20_mean"] == pytest.approx(ndcg.mean())
    assert bpr["recall_truncated@20_mean"] == pytest.approx(2 * ndcg.mean())
    assert bpr["best_epoch_mean"] == pytest.approx(5.5)
    assert bpr["train_seconds_mean"] == pytest.approx(15.0)
    single = table.loc[("ml-toy", "mf", "softmax")]
    assert single["n_seeds"] == 1 and np.isnan(single["ndcg@20_std"])  # blank in the CSV

    text = md.read_text()
    best = table["ndcg@20_mean"].idxmax()
    assert f"**{table.loc[best, 'ndcg@20_mean']:.4f}" in text
    # the best of each (dataset, model) block in bold, for each of the five metrics: bpr in mf and lightgcn
    bold_rows = [line for line in text.splitlines() if "**" in line]
    assert text.count("**") == 2 * 5 * 2
    assert [row.split("|")[2:4] for row in bold_rows] == [[" lightgcn ", " bpr "], [" mf ", " bpr "]]
    assert f"{4 * ndcg.mean():.4f} ± {np.std(4 * ndcg, ddof=1):.4f}" in text
    # recipe order follows the config, not the alphabet
    mf_rows = [line for line in text.splitlines() if "| mf |" in line]
    assert [row.split("|")[3].strip() for row in mf_rows] == ["bpr", "softmax", "bpr_sr"]


def test_results_table_shows_the_configured_recalls(results, tmp_path):
    md = tmp_path / "r.md"
    tables.results_table(files(results, "metrics.json"), tmp_path / "r.csv", md, recalls=["recall_micro"])
    header = md.read_text().splitlines()[0]
    assert "Recall-micro@20" in header and "Recall@20" not in header and "Recall-trunc@20" not in header
    table = pd.read_csv(tmp_path / "r.csv").set_index(["dataset", "model", "recipe"])
    assert table.loc[("ml-toy", "mf", "softmax"), "recall_micro@20_mean"] == pytest.approx(3 * 0.11)
    with pytest.raises(ValueError, match="unknown recall"):
        tables.results_table(files(results, "metrics.json"), tmp_path / "r.csv", md, recalls=["recal"])


def test_spectrum_table_means(results, tmp_path):
    csv, md = tmp_path / "spectrum.csv", tmp_path / "spectrum.md"
    tables.spectrum_table(files(results, "spectrum.json"), csv, md)
    assert_written(csv, md)
    table = pd.read_csv(csv).set_index(["dataset", "model", "recipe"])
    bpr = table.loc[("ml-toy", "lightgcn", "bpr")]
    seeds = [json.loads(f.read_text()) for f in files(results, "spectrum.json", under="ml-toy/lightgcn/bpr")]
    assert bpr["user_stable_rank"] == pytest.approx(np.mean([s["user"]["stable_rank"] for s in seeds]))
    assert bpr["item_uniformity"] == pytest.approx(np.mean([s["item"]["uniformity"] for s in seeds]))
    assert bpr["alignment"] == pytest.approx(np.mean([s["alignment"] for s in seeds]))
    assert bpr["n_seeds"] == 2 and bpr["dim"] == DIM
    assert table.loc[("ml-toy", "popularity", "none"), "dim"] == 1


def test_dataset_table_stacks_stats(tmp_path):
    for dataset, users in (("ml-toy", 10), ("books", 20)):
        folder = tmp_path / "results" / "data" / dataset / "split" / "seed0"
        folder.mkdir(parents=True)
        pd.DataFrame(
            {
                "split": ["all", "train", "valid", "test"],
                "users": users,
                "items": 5,
                "interactions": [40, 30, 5, 5],
                "density": [40 / (users * 5), 30 / (users * 5), 5 / (users * 5), 5 / (users * 5)],
            }
        ).to_csv(folder / "stats.csv", index=False)
    stats = sorted((tmp_path / "results" / "data").rglob("stats.csv"))
    csv, md = tmp_path / "datasets.csv", tmp_path / "datasets.md"
    tables.dataset_table(stats, csv, md)
    assert_written(csv, md)
    table = pd.read_csv(csv)
    assert list(table.columns[:3]) == ["dataset", "seed", "split"]
    assert len(table) == 8 and set(table["dataset"]) == {"ml-toy", "books"}
    assert table.query("dataset == 'books' and split == 'all'")["density"].item() == pytest.approx(0.4)
    assert "| books | 0 | all | 20 | 5 | 40 | 40% |" in md.read_text()


@pytest.mark.parametrize("function", [tables.results_table, tables.spectrum_table, tables.dataset_table])
def test_tables_reject_empty_input(tmp_path, function):
    with pytest.raises(ValueError, match="no .* files given"):
        function([], tmp_path / "a.csv", tmp_path / "a.md")
    assert not (tmp_path / "a.csv").exists()


def test_dataset_from_stats_path_errors():
    assert tables.dataset_from_stats_path("/data/x/results/data/ml-1m/split/seed2/stats.csv") == ("ml-1m", 2)
    with pytest.raises(ValueError, match="split"):
        tables.dataset_from_stats_path("results/ml-1m/stats.csv")


def test_results_table_says_which_split_protocol_was_used(tmp_path):
    from specrec import io
    from specrec.tables import results_table

    files = []
    for recipe, split in (
        ("bpr", {"protocol": "provided", "fractions": None, "valid_fraction": 0.1, "seed": 1}),
        ("ssm", {"protocol": "random_edge", "fractions": [0.8, 0.1, 0.1], "valid_fraction": None, "seed": 1}),
    ):
        path = tmp_path / f"runs/toy/mf/{recipe}/seed1/metrics.json"
        metrics = {
            name: 0.1 for name in ("recall@20", "recall_truncated@20", "ndcg@10", "ndcg@20", "ndcg@50")
        }
        io.write_json(
            path,
            {"dataset": "toy", "model": "mf", "recipe": recipe, "seed": 1, "best_epoch": 3,
             "train_seconds": 1.0, "test": metrics, "split": split},
        )  # fmt: skip
        files.append(path)
    table = results_table(files, tmp_path / "r.csv", tmp_path / "r.md")
    labels = dict(zip(table["recipe"], table["split"], strict=True))
    assert labels == {"bpr": "provided (+0.1 of train as valid)", "ssm": "random_edge 0.8/0.1/0.1"}
    assert "provided (+0.1 of train as valid)" in (tmp_path / "r.md").read_text()


def test_convergence_table_finds_the_first_epoch_at_95_percent_of_the_best(tmp_path):
    from specrec import io
    from specrec.tables import convergence_table

    path = run_dir(tmp_path, "toy", "mf", "bpr", 1) / "epochs.csv"
    ndcg = [0.10, 0.50, 0.96, 1.00, 0.99]
    io.write_csv(
        path,
        pd.DataFrame(
            {
                "epoch": [1, 2, 3, 4, 5],
                "valid_ndcg@20": ndcg,
                "epoch_seconds": [2.0] * 5,
                "elapsed_seconds": [3.0, 6.0, 9.0, 12.0, 15.0],
            }
        ),
    )
    table = convergence_table([path], tmp_path / "c.csv", tmp_path / "c.md").iloc[0]
    assert (table["best_epoch"], table["epochs_to_95"]) == (4, 3)
    assert (table["seconds_to_95"], table["train_seconds_to_95"]) == (9.0, 6.0)
    assert "Epochs to 95%" in (tmp_path / "c.md").read_text()


def test_beyond_accuracy_table_averages_seeds_and_reads_the_cold_bin(results, tmp_path):
    runs = [f.parent for f in files(results, "metrics.json")]
    table = tables.beyond_accuracy_table(
        [r / "metrics.json" for r in runs], [r / "diversity.json" for r in runs],
        [r / "activity.csv" for r in runs], tmp_path / "b.csv", tmp_path / "b.md", RECIPES,
    )  # fmt: skip
    bpr = table[(table["model"] == "mf") & (table["recipe"] == "bpr")].iloc[0]
    ndcgs = [0.1 + 0.05, 0.2 + 0.05]  # the two seeds of mf/bpr in the fixture
    assert bpr["n_seeds"] == 2 and bpr["auc_mean"] == pytest.approx(0.5 + np.mean(ndcgs))
    assert bpr["cold_ndcg@20_mean"] == pytest.approx(np.mean(ndcgs) / 2)
    assert bpr["ild_genre_mean"] == pytest.approx(1.0)
    assert "Cold NDCG@20" in (tmp_path / "b.md").read_text()
    assert "AUC (batches)" not in (tmp_path / "b.md").read_text()  # no run has KGCN's batched figure


def test_beyond_accuracy_table_shows_kgcns_batched_ctr_beside_the_whole_set(results, tmp_path):
    runs = [f.parent for f in files(results, "metrics.json")]
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["test_ctr_batched"] = {"auc": 0.7, "f1": 0.6, "batch_size": 64, "batches": 3}
        (run / "metrics.json").write_text(json.dumps(metrics))
    table = tables.beyond_accuracy_table(
        [r / "metrics.json" for r in runs], [r / "diversity.json" for r in runs],
        [r / "activity.csv" for r in runs], tmp_path / "b.csv", tmp_path / "b.md", RECIPES,
    )  # fmt: skip
    assert (table["auc_batched_mean"] == 0.7).all() and "auc_mean" in table
    assert "| AUC (batches) | F1 (batches) |" in (tmp_path / "b.md").read_text()


def test_results_index_has_one_row_per_run_and_every_metric(results, tmp_path):
    runs = [f.parent for f in files(results, "metrics.json")]
    index = tables.results_index(
        [r / "metrics.json" for r in runs], [r / "spectrum.json" for r in runs],
        [r / "diversity.json" for r in runs], tmp_path / "index.csv",
    )  # fmt: skip
    assert len(index) == len(runs) == 9 and not index.duplicated(["dataset", "model", "recipe", "seed"]).any()
    assert {"test_ndcg@20", "test_ctr_auc", "item_stable_rank", "alignment", "div20_inter_list"} <= set(index)
    assert not any(c.endswith("singular_values") for c in index.columns)
    row = index[(index["model"] == "mf") & (index["recipe"] == "bpr") & (index["seed"] == 1)].iloc[0]
    assert row["test_ndcg@20"] == pytest.approx(4 * (0.2 + 0.05))  # ndcg is the 4th metric of the fixture
    assert pd.read_csv(tmp_path / "index.csv").shape == index.shape


def test_latex_tables_are_booktabs_with_escapes_and_bold(results, tmp_path):
    paths = {f"{ext}_out": tmp_path / f"r.{ext}" for ext in ("csv", "md", "tex")}
    tables.results_table(files(results, "metrics.json"), **paths, recipes=RECIPES)
    tex = (tmp_path / "r.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "\\toprule" in tex and tex.endswith("\\end{tabular}\n")
    assert "bpr\\_sr" in tex and "$\\pm$" in tex and tex.count("\\textbf{") == 10
    n_rows = len(pd.read_csv(tmp_path / "r.csv"))
    assert tex.count("\\\\\n") == n_rows + 1  # header + one line per row


def write_per_user(root: Path, model: str, recipe: str, seed: int, ndcg: np.ndarray) -> Path:
    path = run_dir(root, "ml-toy", model, recipe, seed) / "per_user.parquet"
    pd.DataFrame({"user": np.arange(len(ndcg)), "ndcg@20": ndcg}).to_parquet(path)
    return path


def test_significance_pairs_each_add_on_with_its_base_recipe(tmp_path):
    rng = np.random.default_rng(0)
    files_ = []
    for seed in (1, 2, 3):
        base = rng.uniform(0, 0.5, 200)
        files_.append(write_per_user(tmp_path, "mf", "bpr", seed, base))
        files_.append(write_per_user(tmp_path, "mf", "bpr+sr", seed, base + 0.05))  # better for every user
        files_.append(write_per_user(tmp_path, "mf", "bpr+same", seed, base))
    paths = {f"{ext}_out": tmp_path / f"s.{ext}" for ext in ("csv", "md", "tex")}
    table = tables.significance_table(files_, **paths).set_index("recipe")
    assert set(table.index) == {"bpr+sr", "bpr+same"} and (table["base"] == "bpr").all()
    better = table.loc["bpr+sr"]
    assert better["n_seeds"] == 3 and better["n_pairs"] == 600
    assert better["ndcg@20"] - better["ndcg@20_base"] == pytest.approx(0.05)
    assert better["p_seeds_ttest"] < 0.001 and better["p_users_wilcoxon"] < 1e-6
    assert table.loc["bpr+same", "p_users_wilcoxon"] == 1.0 and table.loc["bpr+same", "relative_change"] == 0
    assert "+" in (tmp_path / "s.md").read_text() and (tmp_path / "s.tex").exists()


def test_addon_pairs_and_speedup_figure(tmp_path):
    for recipe, decay in (("bpr", 0.5), ("bpr+sr", 0.2), ("ssm", 0.1)):
        write_run(tmp_path, "ml-toy", "mf", recipe, 0, ndcg=0.2, decay=decay)
    epochs = files(tmp_path, "epochs.csv")
    pairs = plots.addon_pairs(runs.epochs_frame(epochs))
    assert pairs == [("ml-toy", "mf", "bpr", ["bpr+sr"])]  # ssm has no add-on run
    pdf, png = tmp_path / "s.pdf", tmp_path / "s.png"
    plots.plot_convergence_speedup(epochs, pdf, png, RECIPES)
    assert_written(pdf, png)
    without_addons = [f for f in epochs if "bpr+sr" not in f.parts]
    with pytest.raises(ValueError, match="no run has both"):
        plots.plot_convergence_speedup(without_addons, tmp_path / "n.pdf", tmp_path / "n.png", RECIPES)


def test_negatives_figure_reads_the_sweep_from_the_recipes(tmp_path):
    runs = [("bpr", 1, []), ("bpr_n4", 4, []), ("bpr_n16", 16, []), ("bpr+sr", 1, ["stable_rank"]),
            ("bpr_n4+sr", 4, ["stable_rank"]), ("directau", 0, ["uniformity"])]  # fmt: skip
    for recipe, n, terms in runs:
        write_run(tmp_path, "ml-toy", "mf", recipe, 0, ndcg=0.1 + n / 100, decay=0.1)
        path = run_dir(tmp_path, "ml-toy", "mf", recipe, 0) / "metrics.json"
        metrics = json.loads(path.read_text())
        regularizers = [{"name": t, "gamma": 1.0, "phase": "all"} for t in terms]
        loss = {"name": "align" if n == 0 else "bpr"}
        metrics["provenance"] = {"recipe": {"loss": loss, "n_negatives": n, "regularizers": regularizers}}
        path.write_text(json.dumps(metrics))
    frame = plots.negatives_frame(files(tmp_path, "metrics.json"))
    assert len(frame) == 5 and frame["stable_rank"].sum() == 2  # directau samples no negatives
    assert sorted(frame.loc[~frame["stable_rank"], "n_negatives"]) == [1, 4, 16]
    pdf, png = tmp_path / "n.pdf", tmp_path / "n.png"
    plots.plot_negatives(files(tmp_path, "metrics.json"), pdf, png)
    assert_written(pdf, png)
    single = [f for f in files(tmp_path, "metrics.json") if f.parts[-3] in ("bpr", "directau")]
    with pytest.raises(ValueError, match="several numbers of negatives"):
        plots.plot_negatives(single, tmp_path / "x.pdf", tmp_path / "x.png")


def test_filter_sensitivity_reads_alpha_and_tau_from_the_recipes(tmp_path):
    grid = [("ds_a5_t3", 0.5, 3.0), ("ds_a8_t3", 0.8, 3.0), ("ds_a8_t5", 0.8, 5.0), ("bpr", None, None)]
    for recipe, alpha, tau in grid:
        write_run(tmp_path, "ml-toy", "mf", recipe, 0, ndcg=0.2 + (alpha or 0) / 10, decay=0.1)
        path = run_dir(tmp_path, "ml-toy", "mf", recipe, 0) / "metrics.json"
        metrics = json.loads(path.read_text())
        loss = {"name": "bpr"} if alpha is None else {"name": "directspec_plus", "alpha": alpha, "tau": tau}
        metrics["provenance"] = {"recipe": {"loss": loss, "n_negatives": 0, "regularizers": []}}
        path.write_text(json.dumps(metrics))
    frame = plots.filter_parameters_frame(files(tmp_path, "metrics.json"))
    assert sorted(zip(frame["alpha"], frame["tau"], strict=True)) == [(0.5, 3.0), (0.8, 3.0), (0.8, 5.0)]
    pdf, png = tmp_path / "f.pdf", tmp_path / "f.png"
    plots.plot_filter_sensitivity(files(tmp_path, "metrics.json"), pdf, png)
    assert_written(pdf, png)
    one = [f for f in files(tmp_path, "metrics.json") if f.parts[-3] == "ds_a5_t3"]
    with pytest.raises(ValueError, match="varies alpha or tau"):
        plots.plot_filter_sensitivity(one, tmp_path / "x.pdf", tmp_path / "x.png")


def test_sensitivity_points_take_the_learning_rate_best_on_validation():
    runs = pd.DataFrame(
        {
            "dataset": "d", "model": "mf", "loss": "directspec_plus", "alpha": [0.5, 0.5, 0.8, 0.8],
            "tau": [3.0, 3.0, 3.0, 3.0], "seed": 1,
            "recipe": ["p~alpha=0.5,lr=10", "p~alpha=0.5,lr=200", "p~alpha=0.8,lr=10", "p~alpha=0.8,lr=200"],
            "valid_ndcg@20": [0.1, 0.2, 0.3, 0.1], "ndcg@20": [0.9, 0.0, 0.0, 0.9],  # test never decides
        }
    )  # fmt: skip
    best = plots.best_per_filter_setting(runs, "ndcg@20")
    assert sorted(best["recipe"]) == ["p~alpha=0.5,lr=200", "p~alpha=0.8,lr=10"]
    assert best["ndcg@20"].tolist() == [0.0, 0.0]


def test_results_table_tests_each_recipe_against_the_baseline_per_user(results, tmp_path):
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 0.5, 200)
    per_user = [
        write_per_user(results, "mf", "bpr", 0, base),
        write_per_user(results, "mf", "bpr", 1, base),
        write_per_user(results, "mf", "softmax", 0, base + 0.05),  # better for every user
        write_per_user(results, "mf", "bpr_sr", 0, base + rng.normal(0, 0.01, 200)),  # noise only
    ]
    metrics = files(results, "metrics.json", under="ml-toy/mf")
    table = tables.results_table(metrics, tmp_path / "r.csv", tmp_path / "r.md", per_user_files=per_user)
    table = table.set_index("recipe")
    assert table.loc["softmax", "reference"] == "bpr" and table.loc["softmax", "p_users_wilcoxon"] < 1e-6
    assert table.loc["bpr_sr", "p_users_wilcoxon"] > 0.01
    assert np.isnan(table.loc["bpr", "p_users_wilcoxon"])  # the baseline itself
    assert "| p (users) |" in (tmp_path / "r.md").read_text()


def test_headline_correlates_balance_with_accuracy_and_writes_its_caption(results, tmp_path):
    from scipy import stats

    from specrec.headline import headline

    runs = [f.parent for f in files(results, "metrics.json")]
    template = tmp_path / "template.rst"
    template.write_text("Static text over {{ snakemake.config['datasets'] }}.\n")
    out = {name: tmp_path / f"headline.{name}" for name in ("pdf", "png", "json")}
    out["caption"] = tmp_path / "headline.rst"
    per_run = {name: [r / name for r in runs] for name in ("metrics.json", "spectrum.json", "epochs.csv")}
    found = headline(*per_run.values(), out, template, RECIPES, ["mf", "lightgcn"])
    assert_written(out["pdf"], out["png"], out["json"], out["caption"])
    # the reference: per trained (model, recipe), seed means of test NDCG@20 and of (user + item SR) / 2d
    cells = {}
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        spectrum = json.loads((run / "spectrum.json").read_text())
        if spectrum["dim"] > 1:
            balance = (
                (spectrum["user"]["stable_rank"] + spectrum["item"]["stable_rank"]) / 2 / spectrum["dim"]
            )
            point = (balance, metrics["test"]["ndcg@20"])
            cells.setdefault((metrics["model"], metrics["recipe"]), []).append(point)
    balance = [np.mean([b for b, _ in values]) for values in cells.values()]
    ndcg = [np.mean([n for _, n in values]) for values in cells.values()]
    expected = stats.spearmanr(balance, ndcg)
    [toy] = found
    assert toy["correlations"]["stable_rank"]["rho"] == pytest.approx(expected.statistic)
    assert toy["correlations"]["stable_rank"]["p"] == pytest.approx(expected.pvalue)
    assert toy["correlations"]["stable_rank"]["n"] == 6  # popularity has no spectrum to balance
    caption = out["caption"].read_text()
    assert (
        caption.startswith("*What this study shows.* **ml-toy**") and f"{expected.statistic:+.2f}" in caption
    )
    assert caption.rstrip().endswith("Static text over {{ snakemake.config['datasets'] }}.")  # left to Jinja
    assert json.loads(out["json"].read_text())["datasets"][0]["dataset"] == "ml-toy"


def test_results_table_marks_flagged_runs(results, tmp_path):
    for seed in (0, 1):
        path = results / "results/runs/ml-toy/mf/bpr" / f"seed{seed}" / "metrics.json"
        metrics = json.loads(path.read_text())
        flags = ["at_or_below_popularity"] + ["loss_exploded"] * seed
        path.write_text(json.dumps(metrics | {"flags": flags}))
    md = tmp_path / "r.md"
    table = tables.results_table(files(results, "metrics.json"), tmp_path / "r.csv", md, recipes=RECIPES)
    flagged = table.set_index(["dataset", "model", "recipe"])["flags"]
    assert flagged[("ml-toy", "mf", "bpr")] == "at or below popularity (2/2); loss exploded (1/2)"
    assert flagged[("ml-toy", "mf", "softmax")] == ""  # no flags recorded: an older metrics.json too
    assert "⚠ at or below popularity (2/2); loss exploded (1/2)" in md.read_text()


def test_results_table_shows_ndcg_at_the_cutoffs_the_runs_have(results, tmp_path):
    """train.ks = [10, 20, 1000]: no NDCG@50 anywhere, an NDCG@1000 column instead."""
    for path in files(results, "metrics.json"):
        metrics = json.loads(path.read_text())
        test = {k: v for k, v in metrics["test"].items() if not k.endswith("@50")} | {"ndcg@1000": 0.9}
        path.write_text(json.dumps(metrics | {"test": test}))
    md = tmp_path / "r.md"
    tables.results_table(files(results, "metrics.json"), tmp_path / "r.csv", md)
    header = md.read_text().splitlines()[0]
    assert "NDCG@10 | NDCG@20 | NDCG@1000" in header and "NDCG@50" not in header
