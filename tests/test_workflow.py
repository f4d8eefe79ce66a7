"""Integration: the smoke DAG through Snakemake on the real ML-100K from the offline mirror.

Skipped when the mirror (../shared/data beside the checkout, or $SPECREC_MIRROR) is absent.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smoke import MIRROR, ROOT, run_smoke

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (MIRROR / "ml-100k").is_dir(), reason=f"no dataset mirror at {MIRROR}"),
]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_smoke(workdir, *args)


@pytest.fixture(scope="module")
def workdir(smoke_workdir) -> Path:
    return smoke_workdir


SSM_RUNS = ("mf/ssm~temperature=0.5", "mf/ssm~temperature=1")  # smoke.yaml's grid


def metrics(workdir: Path, model: str, recipe: str) -> dict:
    return json.loads((workdir / f"results/runs/ml-100k/{model}/{recipe}/seed7/metrics.json").read_text())


def test_every_output_exists_and_is_not_empty(workdir):
    figures = ("spectrum", "stable_rank", "validation", "alignment_uniformity", "activity", "diversity")
    runs = ("popularity/none", "mf/bpr", *SSM_RUNS, "mf/directau+sr_warm", "kgcn/bce+semantic_cl")
    tables = ("results", "spectrum", "datasets", "convergence", "beyond_accuracy", "significance", "tuning")
    run_files = (
        "epochs.csv", "metrics.json", "embeddings.npz", "spectrum.json", "per_user.parquet",
        "top_lists.npz", "diversity.json", "activity.csv",
    )  # fmt: skip
    expected = [
        "results/data/ml-100k/raw/MANIFEST.json",
        "results/data/ml-100k/split/seed7/stats.csv",
        "results/data/ml-100k/kg/triples.parquet",
        "results/index.csv",
        "results/overview.html",
        *[f"results/figures/headline.{ext}" for ext in ("pdf", "png", "rst", "json")],
        "results/data/ml-100k/text/all-MiniLM-L6-v2.npy",
        *[f"results/figures/ml-100k/{name}.{ext}" for name in figures for ext in ("pdf", "png")],
        *[f"results/tables/{name}.{ext}" for name in tables for ext in ("csv", "md", "tex")],
        *[f"results/runs/ml-100k/{run}/seed7/{name}" for run in runs for name in run_files],
    ]
    missing = [
        name for name in expected if not (workdir / name).is_file() or not (workdir / name).stat().st_size
    ]
    assert not missing
    # Snakemake's record of each training job: wall time and peak memory, to size a cluster's requests; the
    # two SSM grid points trained as one group (train.group_size), every other run alone
    groups = ("popularity_none.g0", "mf_bpr.g0", "mf_ssm.g0", "mf_directau.g0", "kgcn_bce.g0")
    records = sorted((workdir / "results/logs/train/ml-100k").glob("*.benchmark.tsv"))
    assert [record.name.removesuffix("_seed7.benchmark.tsv") for record in records] == sorted(groups)
    for record in records:
        assert {"s", "max_rss"} <= set(record.read_text().splitlines()[0].split("\t")), record
    leftovers = [
        p for p in (workdir / "results").rglob("*") if p.suffix == ".tmp" or p.name == "checkpoint.pt"
    ]
    assert not leftovers and not (workdir / "results/groups").exists()  # the groups' folders are temporary
    # each run's files are hard links of what its group wrote (the group's names are gone)
    assert all(path.stat().st_nlink == 1 for path in (workdir / "results/runs").rglob("*.json"))


def test_metrics_are_sane_and_mf_beats_popularity(workdir):
    popularity = metrics(workdir, "popularity", "none")
    for recipe in ("bpr", "ssm~temperature=1", "directau+sr_warm"):
        mf = metrics(workdir, "mf", recipe)
        for name, value in mf["test"].items():
            if "@" in name:
                assert 0.0 <= value <= 1.0, (recipe, name, value)
        assert mf["epochs_run"] >= 1 and mf["best_epoch"] >= 1
    # 8 smoke epochs suffice for the sampled-negative losses; DirectAU needs many more (a tuning question)
    for recipe in ("bpr", "ssm~temperature=1"):
        assert metrics(workdir, "mf", recipe)["test"]["ndcg@20"] > popularity["test"]["ndcg@20"], recipe


def test_kgcn_with_the_contrastive_task_ran_on_the_item_graph(workdir):
    kgcn, popularity = metrics(workdir, "kgcn", "bce+semantic_cl"), metrics(workdir, "popularity", "none")
    assert kgcn["test_ctr"]["auc"] > 0.8 and kgcn["test"]["ndcg@20"] > popularity["test"]["ndcg@20"]
    epochs = pd.read_csv(workdir / "results/runs/ml-100k/kgcn/bce+semantic_cl/seed7/epochs.csv")
    assert epochs["loss_semantic_cl_all"].notna().all() and (epochs["loss_bce"] > 0).all()
    kg = pd.read_csv(workdir / "results/data/ml-100k/kg/stats.csv").iloc[0]
    assert kg["items_with_triples"] == 1682  # every ML-100K movie has a genre and a year
    table = pd.read_csv(workdir / "results/tables/beyond_accuracy.csv")
    assert {"auc_mean", "ild_genre_mean", "cold_ndcg@20_mean"} <= set(table.columns)
    assert len(table) == 5


def test_warm_start_phases_are_logged(workdir):
    epochs = pd.read_csv(workdir / "results/runs/ml-100k/mf/directau+sr_warm/seed7/epochs.csv")
    assert epochs["phase"].iloc[:2].tolist() == ["warm", "warm"]
    assert (epochs["phase"].iloc[2:] == "tune").all()
    assert not (workdir / "results/checkpoints/ml-100k/mf/directau+sr_warm/seed7/checkpoint.pt").exists()


def test_dataset_statistics_match_ml100k(workdir):
    stats = pd.read_csv(workdir / "results/data/ml-100k/split/seed7/stats.csv").set_index("split")
    assert stats.loc["all", "users"] == 943 and stats.loc["all", "items"] == 1682
    assert stats.loc["all", "interactions"] == 100_000
    assert stats.loc[["train", "valid", "test"], "interactions"].sum() == 100_000


def test_spectrum_and_text_outputs_are_consistent(workdir):
    spectrum = json.loads((workdir / "results/runs/ml-100k/mf/bpr/seed7/spectrum.json").read_text())
    sigma = spectrum["item"]["singular_values"]
    assert len(sigma) == spectrum["dim"] == 32 and sigma == sorted(sigma, reverse=True)
    for table in ("user", "item"):
        assert 1.0 <= spectrum[table]["stable_rank"] <= 32 and 1.0 <= spectrum[table]["effective_rank"] <= 32
    manifest = json.loads((workdir / "results/data/ml-100k/text/all-MiniLM-L6-v2.json").read_text())
    assert manifest["items"] == 1682 and manifest["dimension"] == 384
    assert manifest["fallbacks"] == 1682  # ML-100K has no synopses: every text is title, year and genres


def test_second_run_has_nothing_to_do_and_report_builds(workdir):
    dry = snakemake(workdir, "--dry-run")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    snakemake(workdir, "--report", str(workdir / "report.html"))
    html = (workdir / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "spectrum" in html.lower()
    for png in (workdir / "results/figures").rglob("*.png"):  # every figure is in the report
        assert png.name in html, png.name
    # the headline comes first (categories are listed alphabetically) under the caption its job computed
    categories = json.loads(re.search(r"var categories = (\{.*?\});", html)[1])
    assert sorted(categories)[0] == "Answer" and "headline.png" in str(categories["Answer"])
    assert "What this study shows" in html and "Spearman" in html
    from specrec import report

    if report.find_chromium() is not None:  # it renders: the navigation lists the result categories
        from PIL import Image

        shot = report.screenshot(workdir / "report.html", workdir / "report.png", width=1200, height=900)
        image = np.asarray(Image.open(shot).convert("L"))
        assert image.std() > 20  # not a blank page


def dry_run(workdir: Path, folder: Path, train: str, *args: str) -> str:
    """What a dry run of the finished smoke study would do with `train: {train}` on top of its config."""
    override = folder / "override.yaml"
    override.write_text(f"train: {{{train}}}\n")
    dry = run_smoke(workdir, "--dry-run", "--quiet", "rules", *args, configfiles=(override,))
    return dry.stdout + dry.stderr


def trains(output: str) -> bool:
    return re.search(r"^train\s+[1-9]", output, re.MULTILINE) is not None


def test_how_runs_train_is_no_reason_to_train_them_again_and_a_new_group_size_need_not_be(workdir, tmp_path):
    # threads, stacking, compiling: the runs stay what they are (the overview page, which shows the config,
    # is drawn again)
    output = dry_run(workdir, tmp_path, "threads: 1, stack: always, compile: true")
    assert not re.search(r"^train\s", output, re.MULTILINE), output
    # a new group size changes the runs' jobs: trained again, unless modification times alone decide
    output = dry_run(workdir, tmp_path, "group_size: 1")
    assert trains(output), output
    output = dry_run(workdir, tmp_path, "group_size: 1", "--rerun-triggers", "mtime")
    assert "Nothing to be done" in output, output
    output = dry_run(workdir, tmp_path, "weight_decay: 0.5")  # a setting the results depend on
    assert trains(output), output


def test_the_grid_is_settled_on_validation_and_reported_once(workdir):
    tuning = pd.read_csv(workdir / "results/tables/tuning.csv", keep_default_na=False)
    ssm = tuning[tuning["recipe"] == "ssm"].set_index("setting")
    assert list(ssm.index) == ["temperature=0.5", "temperature=1"] and ssm["selected"].sum() == 1
    valid = {s: metrics(workdir, "mf", f"ssm~{s}")["valid"]["ndcg@20"] for s in ssm.index}
    assert ssm["selected"].idxmax() == max(valid, key=valid.get)
    results = pd.read_csv(workdir / "results/tables/results.csv", keep_default_na=False)
    row = results[results["recipe"] == "ssm"]
    assert len(row) == 1 and row["setting"].iloc[0] == max(valid, key=valid.get)
    index = pd.read_csv(workdir / "results/index.csv")
    assert index["selected"].sum() == len(index) - 1  # every run but the losing ssm setting


def test_the_overview_page_shows_every_figure(workdir):
    from specrec import report

    page = (workdir / "results/overview.html").read_text()
    pngs = sorted((workdir / "results/figures").rglob("*.png"))
    assert page.count('<div class="card"') == len(pngs) and page.count("data:image/png;base64,") == len(pngs)
    assert page.index('id="the-answer-headline"') < page.index('<div class="card"', page.index("Figures:"))
    computed = json.loads((workdir / "results/figures/headline.json").read_text())["datasets"][0]
    rho = computed["correlations"]["stable_rank"]["rho"]
    assert computed["dataset"] == "ml-100k" and (rho is None or f"ρ = {rho:+.2f}" in page)
    if report.find_chromium() is None:
        pytest.skip("Chromium is not installed: the page was checked, not rendered")
    from PIL import Image

    shot = report.screenshot(workdir / "results/overview.html", workdir / "overview.png")
    width, height = Image.open(shot).size
    assert width == 1600 and height > 600 * len(pngs) / 2


def jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The job counts of a dry run's summary table."""
    lines = (result.stdout + result.stderr).splitlines()
    rows = [line.split() for line in lines if re.fullmatch(r"\w+\s+\d+", line.strip())]
    return {rule: int(count) for rule, count in rows}


def test_deleting_a_figure_rebuilds_only_that_figure(workdir):
    figure = workdir / "results/figures/ml-100k/spectrum.png"
    files = [path for path in (workdir / "results").rglob("*") if path.is_file() and path != figure]
    others = {path: path.stat().st_mtime_ns for path in files}
    figure.unlink()
    assert jobs(snakemake(workdir, "--dry-run", "--quiet", "rules")) == {
        "spectrum_figure": 1, "overview": 1, "all": 1, "total": 3  # the overview page embeds the figure
    }  # fmt: skip
    snakemake(workdir)
    changed = {path for path, mtime in others.items() if path.stat().st_mtime_ns != mtime}
    rebuilt = {
        "figures/ml-100k/spectrum.pdf",
        "overview.html",
        "logs/spectrum_figure/ml-100k.log",
        "logs/overview.log",
    }
    assert figure.is_file() and {p.relative_to(workdir / "results").as_posix() for p in changed} <= rebuilt


def test_paper3_dry_run_lists_the_full_grid(tmp_path):
    """3 datasets x 3 seeds x (2 models x 18 recipes x 9 (lr, weight decay) points + popularity) runs."""
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path), "--configfile", str(ROOT / "config/config.yaml"),
        str(ROOT / "config/experiments/paper3.yaml"), "--config", f"mirror={MIRROR}",
        "--dry-run", "--quiet", "rules",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(
        line.split() for line in result.stdout.splitlines() if re.fullmatch(r"\w+\s+\d+", line.strip())
    )
    assert int(counts["run_files"]) == 3 * 3 * (2 * 18 * 9 + 1) == 2925
    assert int(counts["train"]) < 2925 / 3  # in groups of train.group_size


def test_the_readmes_command_line_overrides_work(tmp_path):
    """Values inside --config lists and mappings arrive as strings; the workflow reads them as the schema's
    types, and names the key of a value that is still wrong."""
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path), "--configfile", str(ROOT / "config/smoke.yaml"),
        "--dry-run", "--quiet", "rules", "--config", f"mirror={MIRROR}", "seeds=[1,2,3]",
        "train={epochs: 3, lr: 1e-3}", "resources={train: {runtime: 1440}}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert jobs(result)["split"] == 3
    wrong = subprocess.run([*command, "train={lr: -0.01}"], capture_output=True, text=True, cwd=ROOT)
    assert wrong.returncode != 0 and "config key train.lr = -0.01" in wrong.stdout + wrong.stderr


def test_a_popularity_only_study_asks_for_no_figure_that_needs_training(tmp_path):
    """Popularity is fitted: no spectrum, no training curve, no convergence; what remains can be made."""
    study = tmp_path / "popularity.yaml"
    study.write_text("runs: {popularity: [none], mf: [], kgcn: []}\n")
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path), "--configfile", str(ROOT / "config/smoke.yaml"), str(study),
        "--dry-run", "--quiet", "rules", "--config", f"mirror={MIRROR}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = jobs(result)
    assert counts["train"] == 1 and counts["validation_figure"] == 1 and counts["diversity_figure"] == 1
    for needs_training in ("spectrum_figure", "stable_rank_figure", "alignment_uniformity_figure",
                           "convergence", "headline_figure"):  # fmt: skip
        assert needs_training not in counts


def test_the_sensitivity_figure_is_asked_for_only_where_alpha_or_tau_varies(tmp_path):
    """paper2_quick runs DirectSpec+ at one (alpha, tau) and its adaptive form: nothing to draw (the
    adaptive temperatures are not a tau); paper2's grids vary both."""
    counts = {}
    for study in ("paper2_quick", "paper2"):
        files = [str(ROOT / "config/experiments/paper2.yaml")]
        files += [str(ROOT / "config/experiments/paper2_quick.yaml")] if study == "paper2_quick" else []
        command = [
            sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(tmp_path / study), "--configfile", str(ROOT / "config/config.yaml"), *files,
            "--dry-run", "--quiet", "rules", "--config", f"mirror={MIRROR}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        counts[study] = jobs(result).get("sensitivity_figure", 0)
    assert counts == {"paper2_quick": 0, "paper2": 3}


def test_a_yaml_error_in_the_default_config_names_the_file_line_and_column(tmp_path):
    """The default config is read by the workflow itself: its YAML error names the place, not only that
    some config file is not valid JSON or YAML."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text("datasets: [ml-100k]\ntrain:\n  epochs: [3\n")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(tmp_path), "--dry-run", "--quiet", "rules"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and re.search(r"config/config\.yaml, line \d+, column \d+", output), output[
        -2000:
    ]
