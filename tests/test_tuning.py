"""Hyper-parameter grids: expansion into runs, settings written into recipes, selection on validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from specrec import tables, tuning
from specrec.config import ConfigError, check_config, run_targets
from specrec.recipes import resolve, with_setting

ROOT = Path(__file__).resolve().parents[1]

GRIDS = {
    "bpr": {"lr": [0.01, 0.001], "weight_decay": [1.0e-6, 1.0e-8]},
    "directau": {"regularizers.uniformity": [0.5, 1.0]},
    "bpr+sr_warm": {"sr_warm.gamma": [0.1, 1.0]},
}


@pytest.fixture
def config() -> dict:
    with open(ROOT / "config" / "config.yaml") as handle:
        config = yaml.safe_load(handle)
    config["tuning"] = {"metric": "ndcg@20", "grids": copy.deepcopy(GRIDS)}
    config["runs"] = {"popularity": ["none"], "mf": ["bpr", "bpr+sr_warm", "bpr+unif_warm", "directau"]}
    config["seeds"] = [1, 2]
    return config


def test_expand_run_is_the_product_in_grid_order():
    assert tuning.expand_run("bpr", GRIDS) == [
        "bpr~lr=0.01,weight_decay=1e-06",
        "bpr~lr=0.01,weight_decay=1e-08",
        "bpr~lr=0.001,weight_decay=1e-06",
        "bpr~lr=0.001,weight_decay=1e-08",
    ]
    assert tuning.expand_run("ssm", GRIDS) == ["ssm"]  # no grid: the run itself
    # an add-on run takes its base recipe's grid unless it has its own
    assert tuning.expand_run("bpr+unif_warm", GRIDS)[0] == "bpr+unif_warm~lr=0.01,weight_decay=1e-06"
    assert tuning.expand_run("bpr+sr_warm", GRIDS) == [
        "bpr+sr_warm~sr_warm.gamma=0.1",
        "bpr+sr_warm~sr_warm.gamma=1",
    ]


def test_setting_values_round_trip_the_configured_values():
    for name in tuning.expand_run("bpr", GRIDS):
        values = tuning.setting_values(name, GRIDS)
        assert name == f"bpr~{tuning.setting_name(values)}"
        assert all(values[key] in GRIDS["bpr"][key] for key in values)
    assert tuning.setting_values("bpr~lr=0.001,weight_decay=1e-08", GRIDS) == {
        "lr": 0.001,
        "weight_decay": 1e-8,
    }
    assert tuning.setting_values("bpr", GRIDS) == {}
    with pytest.raises(tuning.GridError, match="not a point of the grid"):
        tuning.setting_values("bpr~lr=0.5,weight_decay=1e-08", GRIDS)
    with pytest.raises(tuning.GridError, match="every key of its grid"):
        tuning.setting_values("bpr~lr=0.01", GRIDS)


def test_with_setting_writes_recipe_keys_dotted_paths_and_add_on_keys(config):
    recipes, addons = config["recipes"], config["regularizers"]
    before = copy.deepcopy((recipes, addons))
    new_recipes, new_addons = with_setting(
        "directau+sr_warm", {"lr": 0.1, "regularizers.uniformity": 2.0, "sr_warm.gamma": 3.0}, recipes, addons
    )
    assert new_recipes["directau"]["lr"] == 0.1
    assert new_recipes["directau"]["regularizers"] == {"uniformity": 2.0}
    assert new_addons["sr_warm"]["gamma"] == 3.0
    assert (recipes, addons) == before  # the config itself is untouched


def test_resolve_writes_in_a_setting(config):
    resolved = resolve(config, "bpr~lr=0.001,weight_decay=1e-08")
    assert resolved["lr"] == 0.001 and resolved["weight_decay"] == 1e-8
    assert resolved["loss"] == {"name": "bpr"} and resolved["n_negatives"] == 1
    warm = resolve(config, "bpr+sr_warm~sr_warm.gamma=1")
    assert [term["gamma"] for term in warm["regularizers"]] == [1.0]
    assert resolve(config, "directau~regularizers.uniformity=1")["regularizers"][0]["gamma"] == 1.0


def test_run_targets_expand_every_grid_for_every_seed(config):
    check_config(config)
    runs = run_targets(config)
    by_recipe = pd.Series([run["recipe"].partition("~")[0] for run in runs]).value_counts()
    # per seed: bpr 4, bpr+sr_warm 2 (own grid), bpr+unif_warm 4 (bpr's grid), directau 2, popularity 1
    assert by_recipe.to_dict() == {"bpr": 8, "bpr+unif_warm": 8, "bpr+sr_warm": 4, "directau": 4, "none": 2}
    assert len({(r["recipe"], r["seed"]) for r in runs}) == len(runs)


@pytest.mark.parametrize(
    ("grids", "runs", "message"),
    [
        ({"bpr": {"temprature": [1.0]}}, ["bpr"], "bad parameters for loss 'bpr'"),
        ({"warp": {"lr": [0.1]}}, ["bpr"], "tuning.grids names undefined recipes 'warp'"),
        ({}, ["bpr~lr=0.1"], "put settings in tuning.grids"),
    ],
)
def test_check_config_rejects_bad_grids(config, grids, runs, message):
    config["tuning"]["grids"] = grids
    config["runs"]["mf"] = runs
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def valid_runs(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    """Flattened metrics.json rows: (run name, seed, valid ndcg@20, test ndcg@20)."""
    return pd.DataFrame(
        [
            {
                "dataset": "d",
                "model": "mf",
                "recipe": run,
                "seed": seed,
                "valid_ndcg@20": valid,
                "test_ndcg@20": test,
            }
            for run, seed, valid, test in rows
        ]
    )


def test_selection_takes_the_best_mean_validation_score_never_test():
    runs = valid_runs(
        [
            ("bpr~lr=0.1", 1, 0.30, 0.10),
            ("bpr~lr=0.1", 2, 0.20, 0.10),  # mean valid 0.25
            ("bpr~lr=0.01", 1, 0.26, 0.40),  # best on test, mean valid 0.24
            ("bpr~lr=0.01", 2, 0.22, 0.40),
            ("ssm", 1, 0.1, 0.1),
        ]
    )
    selection = tuning.selection_frame(runs, "ndcg@20").set_index("run")
    assert selection.loc["bpr~lr=0.1", "selected"] and not selection.loc["bpr~lr=0.01", "selected"]
    assert selection.loc["bpr~lr=0.1", "valid_ndcg@20"] == pytest.approx(0.25)
    assert selection.loc["bpr~lr=0.1", "n_seeds"] == 2
    assert selection.loc["ssm", "selected"] and selection.loc["ssm", "setting"] == ""
    assert (selection["recipe"] == ["bpr", "bpr", "ssm"]).all()

    chosen = tuning.apply_selection(runs, selection.reset_index())
    assert sorted(chosen["recipe"]) == ["bpr", "bpr", "ssm"]
    assert set(chosen.loc[chosen["recipe"] == "bpr", "setting"]) == {"lr=0.1"}
    assert chosen.loc[chosen["recipe"] == "bpr", "test_ndcg@20"].tolist() == [0.10, 0.10]


def test_selection_breaks_ties_by_grid_order_and_rejects_unknown_runs():
    runs = valid_runs([("bpr~lr=0.1", 1, 0.2, 0.0), ("bpr~lr=0.01", 1, 0.2, 0.0)])
    selection = tuning.selection_frame(runs, "ndcg@20")
    assert selection["selected"].tolist() == [True, False]
    with pytest.raises(ValueError, match="missing from the selection table: d/mf/bpr~lr=0.5"):
        tuning.apply_selection(valid_runs([("bpr~lr=0.5", 1, 0.1, 0.1)]), selection)
    with pytest.raises(ValueError, match="lack 'valid_recall@20'"):
        tuning.selection_frame(runs, "recall@20")


def write_metrics(root: Path, run: str, seed: int, valid: float, test: float) -> Path:
    folder = root / "runs" / "d" / "mf" / run / f"seed{seed}"
    folder.mkdir(parents=True)
    metrics = {
        "dataset": "d", "model": "mf", "recipe": run, "seed": seed, "best_epoch": 3, "train_seconds": 1.0,
        "valid": {"ndcg@20": valid},
        "test": {m: test for m in ("recall@20", "recall_truncated@20", "ndcg@10", "ndcg@20", "ndcg@50")},
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder / "metrics.json"


def test_tables_report_the_selected_setting_and_its_change_against_the_baseline(tmp_path):
    files = [
        write_metrics(tmp_path, "bpr", 1, 0.20, 0.200),
        write_metrics(tmp_path, "bpr", 2, 0.20, 0.210),
        write_metrics(tmp_path, "ssm~temperature=0.1", 1, 0.25, 0.230),
        write_metrics(tmp_path, "ssm~temperature=0.1", 2, 0.25, 0.236),
        write_metrics(tmp_path, "ssm~temperature=1", 1, 0.21, 0.900),  # best on test, never chosen
        write_metrics(tmp_path, "ssm~temperature=1", 2, 0.21, 0.900),
    ]
    selection = tables.tuning_table(files, tmp_path / "tuning.csv", tmp_path / "tuning.md")
    assert "**0.2500" in (tmp_path / "tuning.md").read_text()
    assert tuning.read_selection(tmp_path / "tuning.csv").equals(selection)

    table = tables.results_table(files, tmp_path / "r.csv", tmp_path / "r.md", selection=selection)
    ssm = table.set_index("recipe").loc["ssm"]
    assert ssm["setting"] == "temperature=0.1" and ssm["ndcg@20_mean"] == pytest.approx(0.233)
    assert ssm["reference"] == "bpr" and ssm["relative_change"] == pytest.approx(0.233 / 0.205 - 1)
    assert 0 < ssm["p_seeds_ttest"] < 1
    text = (tmp_path / "r.md").read_text()
    assert "| d | mf | ssm | temperature=0.1 |" in text and "+13.7%" in text
