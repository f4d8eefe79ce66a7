"""The config schema, the registries and the cross-checks agree, and bad configs fail with clear errors."""

import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from specrec.config import (
    ConfigError,
    check_config,
    coerce_to_schema,
    prepare_settings,
    run_targets,
    schema_checked,
    split_settings,
)
from specrec.data.sources import DATASETS
from specrec.data.split import SPLITS
from specrec.losses import LOSSES, REGULARIZERS
from specrec.models import MODELS
from specrec.samplers import SAMPLERS

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def schema() -> dict:
    return yaml.safe_load(Path(SCHEMA).read_text())


def test_schema_enums_match_the_registries():
    props = schema()["properties"]
    assert props["datasets"]["items"]["enum"] == DATASETS.names()
    assert props["prepare"]["properties"]["rating_threshold"]["propertyNames"]["enum"] == DATASETS.names()
    assert props["split"]["properties"]["per_dataset"]["propertyNames"]["enum"] == DATASETS.names()
    assert schema()["$defs"]["protocol"]["enum"] == sorted(SPLITS)
    assert props["runs"]["propertyNames"]["enum"] == MODELS.names()
    recipe = props["recipes"]["additionalProperties"]["properties"]
    assert recipe["regularizers"]["propertyNames"]["enum"] == REGULARIZERS.names()
    assert (
        props["regularizers"]["additionalProperties"]["properties"]["regularizer"]["enum"]
        == REGULARIZERS.names()
    )
    assert props["model_options"]["propertyNames"]["enum"] == MODELS.names()
    assert recipe["sampler"]["enum"] == SAMPLERS.names()


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(name):
    config = load(name)
    validate(config, SCHEMA)
    check_config(config)
    assert run_targets(config)


def test_defaults_fill_a_minimal_config():
    config = {"datasets": ["ml-100k"]}
    validate(config, SCHEMA)
    assert config["split"]["fractions"] == [0.8, 0.1, 0.1]
    assert config["train"]["dim"] == 64
    assert config["runs"] == {"popularity": ["none"], "mf": ["bpr", "ssm"]}
    assert config["regularizers"]["sr_warm"] == {"regularizer": "stable_rank", "gamma": 0.1, "warm_epochs": 5}
    check_config(config)


def test_unknown_dataset_is_a_schema_error_listing_valid_names():
    config = load("config.yaml")
    config["datasets"] = ["ml-2m"]
    with pytest.raises(WorkflowError, match=re.escape(f"'ml-2m' is not one of {DATASETS.names()}")):
        validate(config, SCHEMA)


def test_unknown_model_and_loss_are_refused_naming_the_valid_ones():
    config = load("config.yaml")
    bad_model = copy.deepcopy(config)
    bad_model["runs"]["svd"] = ["bpr"]
    with pytest.raises(WorkflowError, match="svd"):
        validate(bad_model, SCHEMA)
    bad_loss = copy.deepcopy(config)
    bad_loss["recipes"]["x"] = {"loss": "hinge"}  # defined, even if no run uses it
    with pytest.raises(
        ConfigError,
        match=re.escape(f"recipe 'x': unknown loss 'hinge'; valid names: {', '.join(LOSSES.names())}"),
    ):
        check_config(bad_loss)


def test_a_new_loss_with_a_new_parameter_is_one_file_and_one_import_line(monkeypatch):
    """What tests/margin_loss.py holds is all a new loss needs: its dataclass fields are the
    parameters a recipe may set, checked (and read from --config text) without touching the schema."""
    import importlib
    import sys

    monkeypatch.setattr(LOSSES, "_entries", dict(LOSSES._entries))  # the registration ends with the test
    monkeypatch.delitem(sys.modules, "margin_loss", raising=False)
    importlib.import_module("margin_loss")  # the one import line
    config = load("config.yaml")
    config["recipes"]["hinge"] = {"loss": "margin_hinge", "margin": 0.5, "n_negatives": 1}
    config["runs"]["mf"] = ["hinge"]
    validate(config, SCHEMA)
    check_config(config)
    misspelt = copy.deepcopy(config)
    misspelt["recipes"]["hinge"] = {"loss": "margin_hinge", "margn": 0.5, "n_negatives": 1}
    with pytest.raises(ConfigError, match="it takes no 'margn'; its parameters: margin"):
        check_config(misspelt)
    negative = copy.deepcopy(config)
    negative["recipes"]["hinge"]["margin"] = "-1"  # as --config gives it
    with pytest.raises(ConfigError, match="margin must be >= 0, got -1.0"):
        check_config(negative)
    from specrec.recipes import build_loss

    assert build_loss({"name": "margin_hinge", "margin": "0.25"}).margin == 0.25


def test_cross_checks_name_the_valid_choices():
    config = load("config.yaml")
    undefined = copy.deepcopy(config)
    undefined["runs"]["mf"] = ["bpr", "warp"]
    with pytest.raises(
        ConfigError, match="model 'mf': unknown recipe 'warp' in 'warp'; valid names: align, bpr,"
    ):
        check_config(undefined)
    untrained = copy.deepcopy(config)
    untrained["runs"]["mf"] = ["none"]
    with pytest.raises(ConfigError, match="unknown recipe 'none'"):
        check_config(untrained)
    addon = copy.deepcopy(config)
    addon["runs"]["mf"] = ["directau+sr_cold"]
    with pytest.raises(
        ConfigError, match="unknown regularizer 'sr_cold' in 'directau\\+sr_cold'; valid names: sr,"
    ):
        check_config(addon)
    fitted = copy.deepcopy(config)
    fitted["runs"]["popularity"] = ["bpr"]
    with pytest.raises(ConfigError, match="valid names: none"):
        check_config(fitted)


def test_model_options_are_checked_against_the_models_constructor():
    """Models take **_ (every model gets the same data), so the config check is where a typo is caught."""
    config = load("config.yaml")
    typo = copy.deepcopy(config) | {"model_options": {"lightgcn": {"n_layer": 2}}}
    with pytest.raises(
        ConfigError,
        match="unknown key of model_options.lightgcn 'n_layer'; valid names: layer_combination, n_layers$",
    ):
        check_config(typo)
    with pytest.raises(ConfigError, match="model_options.mf 'n_layers'; valid names: none$"):
        check_config(copy.deepcopy(config) | {"model_options": {"mf": {"n_layers": 2}}})
    kgcn = {"kgcn": {"n_neighbours": 4, "n_hops": 2, "aggregator": "sum", "eval_floats": 2**24}}
    check_config(copy.deepcopy(config) | {"model_options": kgcn})  # the job's own n_neighbours included


def test_run_targets_cross_every_dataset_run_and_seed():
    config = load("config.yaml") | {"datasets": ["ml-100k", "ml-1m"], "seeds": [1, 2]}
    runs = run_targets(config)
    assert len(runs) == 2 * (1 + 6) * 2  # datasets x (popularity + six MF recipes) x seeds
    assert {"dataset": "ml-1m", "model": "mf", "recipe": "ssm", "seed": 2} in runs


def test_per_dataset_split_overrides_and_prepare_settings():
    config = load("config.yaml") | {"datasets": ["ml-100k", "ml-1m"]}
    config["split"]["per_dataset"] = {"ml-100k": {"protocol": "user_ratio", "fractions": [0.6, 0.2, 0.2]}}
    validate(config, SCHEMA)
    check_config(config)
    assert split_settings(config, "ml-100k") == {
        "protocol": "user_ratio",
        "fractions": [0.6, 0.2, 0.2],
        "valid_fraction": 0.1,
    }
    assert split_settings(config, "ml-1m")["protocol"] == "random_edge"
    assert prepare_settings(config, "ml-1m") == {"rating_threshold": None, "kcore": 0, "bad_rows": "error"}
    config["split"]["per_dataset"]["ml-1m"] = {"fractions": [0.5, 0.1, 0.1]}
    with pytest.raises(ConfigError, match="must sum to 1"):
        check_config(config)


STUDIES = [
    ["paper1.yaml"],
    ["paper1.yaml", "paper1_ablations.yaml"],
    ["paper2.yaml"],
    ["paper3.yaml"],
    ["paper3.yaml", "paper3_quick.yaml"],
    ["paper3.yaml", "paper3_quick.yaml", "paper3_quick_directau_gamma1.yaml"],
    ["paper2.yaml", "paper2_quick.yaml"],
    ["default_three_seeds.yaml"],
    ["loss_zoo_ml1m.yaml"],
    ["collapse_ml1m.yaml"],
]


def test_every_study_config_is_checked():
    shipped = {path.name for path in (ROOT / "config" / "experiments").glob("*.yaml")}
    assert shipped == {name for layers in STUDIES for name in layers}


@pytest.mark.parametrize("layers", STUDIES, ids=["+".join(layers) for layers in STUDIES])
def test_study_configs_merge_onto_the_default_and_are_valid(layers):
    from snakemake.utils import update_config

    config = load("config.yaml")
    for layer in layers:
        update_config(config, load(f"experiments/{layer}"))
    validate(config, SCHEMA)
    check_config(config)
    assert run_targets(config)


def test_the_conda_environment_installs_what_the_package_depends_on():
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    environment = yaml.safe_load((ROOT / "envs" / "specrec.yaml").read_text())["dependencies"]
    pip = next(entry["pip"] for entry in environment if isinstance(entry, dict))
    assert sorted(pip) == sorted([*dependencies, "--editable .."])


def test_resources_of_a_rule_the_workflow_does_not_have_are_refused():
    from specrec.config import ConfigError, check_resource_rules

    check_resource_rules({"resources": {"default": {}, "train": {}}}, ["train", "split"])
    with pytest.raises(ConfigError, match="unknown rule in config key resources 'diversity'; valid names: "
                       "default, split, train"):  # fmt: skip
        check_resource_rules({"resources": {"diversity": {"mem_mb": 8000}}}, ["train", "split"])


def test_job_resources_merge_the_default_and_resolve_auto_gpus():
    from specrec.config import job_resources

    config = load("config.yaml")
    validate(config, SCHEMA)
    on_gpu = job_resources(config, "train", gpu_present=True)
    assert on_gpu["gpu"] == 1 and on_gpu["cpus_per_gpu"] == 4 and on_gpu["runtime"] == 720
    on_cpu = job_resources(config, "train", gpu_present=False)
    assert on_cpu["gpu"] == 0 and "cpus_per_gpu" not in on_cpu  # sbatch rejects cpus-per-gpu without gpus
    assert job_resources(config, "tuning", gpu_present=True) == {"mem_mb": 4000, "runtime": 60}
    # a profile's set-resources come last, as Snakemake applies them: GPU nodes from a login node without one
    sent = job_resources(config, "train", gpu_present=False, given={"gpu": 1, "slurm_partition": "gpu"})
    assert sent["gpu"] == 1 and sent["cpus_per_gpu"] == 4 and sent["slurm_partition"] == "gpu"
    kept_off = job_resources(config, "train", gpu_present=True, given={"gpu": 0})
    assert kept_off["gpu"] == 0 and "cpus_per_gpu" not in kept_off


def test_a_profiles_resources_are_read_as_values_and_those_set_per_job_left_to_snakemake():
    from snakemake.resources import Resources

    from specrec.config import plain_resources

    profile = Resources.from_mapping({"gpu": 1, "mem_mb": 16000, "slurm_partition": lambda wildcards: "gpu"})
    assert plain_resources(profile) == {"gpu": 1, "mem_mb": 16000}
    assert plain_resources({"gpu": 2}) == {"gpu": 2} and plain_resources({}) == {}


def test_command_line_strings_are_read_as_the_types_the_schema_asks_for():
    """`--config seeds='[1,2,3]' resources='{train: {runtime: 1440}}'` hands over strings inside both."""
    given = {
        "seeds": ["1", "2", "3"],
        "resources": {"train": {"runtime": "1440", "gpu": "auto"}, "default": {"gpu": "1"}},
        "train": {"lr": "1e-3", "restore_best": "false", "ctr_batch_size": "null", "device": "cpu"},
        "split": {"seed": "555", "protocol": "random_edge", "fractions": ["0.6", "0.2", "0.2"]},
        "mirror": "../shared/data",
        "tuning": {"grids": {"bpr": {"lr": ["0.01", "0.001"]}}},
    }
    coerced = coerce_to_schema(given, schema())
    assert coerced["seeds"] == [1, 2, 3] and coerced["split"]["fractions"] == [0.6, 0.2, 0.2]
    assert coerced["resources"] == {"train": {"runtime": 1440, "gpu": "auto"}, "default": {"gpu": 1}}
    assert coerced["train"] == {"lr": 0.001, "restore_best": False, "ctr_batch_size": None, "device": "cpu"}
    assert coerced["split"]["seed"] == 555 and coerced["mirror"] == "../shared/data"
    assert coerced["tuning"]["grids"]["bpr"]["lr"] == [0.01, 0.001]  # grid values may be numbers or names


def test_schema_errors_name_the_key_the_value_and_what_it_expects():
    config = load("config.yaml")
    config["train"] |= {"lr": "-0.01", "epoch": 3}
    with pytest.raises(ConfigError) as caught:
        schema_checked(config, SCHEMA)
    message = str(caught.value)
    assert "config key train.lr = -0.01: -0.01 is less than or equal to the minimum of 0" in message
    assert "The key is: Adam learning rate" in message
    assert "config key train: Additional properties are not allowed ('epoch' was unexpected)" in message
    assert "Valid keys here: batch_size," in message and "config/README.md" in message


def test_a_study_with_no_run_at_all_is_refused_naming_runs():
    config = load("config.yaml")
    config["runs"] = {"popularity": [], "mf": []}
    validate(config, SCHEMA)
    with pytest.raises(ConfigError, match="config key runs: every model's list of runs is empty"):
        check_config(config)


def test_the_config_checker_names_file_line_and_column_of_a_yaml_error(tmp_path, capsys):
    from specrec.config import main

    broken = tmp_path / "study.yaml"
    broken.write_text("train:\n  epochs: 3\n   lr: [0.1\n")
    with pytest.raises(SystemExit, match=rf"{re.escape(str(broken))}, line 3, column 6: not valid YAML"):
        main([str(broken), "--base", str(ROOT / "config/config.yaml"), "--schema", SCHEMA])
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("train: {lr: -1}\n")
    with pytest.raises(SystemExit, match=r"config key train\.lr = -1"):
        main([str(wrong), "--base", str(ROOT / "config/config.yaml"), "--schema", SCHEMA])
    main([str(ROOT / "config/experiments/paper3.yaml"), "--base", str(ROOT / "config/config.yaml"),
          "--schema", SCHEMA])  # fmt: skip
    assert capsys.readouterr().out.strip() == "ok: 2925 training jobs"


def test_the_default_config_and_the_schema_give_every_key_the_same_default():
    """A key config/config.yaml sets and the schema defaults must agree, or a config that leaves the key out
    silently gets another value (the warm start's gamma was 1.0 in the schema, 0.1 in config.yaml). Only
    the default study's own choices differ: which runs it trains, and its 20-epoch trim (explained in
    config.yaml)."""

    def differ(default, value, where: str):
        if isinstance(default, dict) and isinstance(value, dict):  # entries both define
            for key in set(default) & set(value):
                yield from differ(default[key], value[key], f"{where}.{key}")
        elif default != value:
            yield where

    def disagreements(section: dict, values: dict, path: str = ""):
        for key, sub in section.get("properties", {}).items():
            if key in values and "default" in sub:
                yield from differ(sub["default"], values[key], path + key)
            if isinstance(values.get(key), dict):
                yield from disagreements(sub, values[key], f"{path}{key}.")

    assert sorted(set(disagreements(schema(), load("config.yaml")))) == ["runs.mf", "train.epochs"]
