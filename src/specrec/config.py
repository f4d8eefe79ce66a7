"""Checks of the workflow config that a JSON schema cannot express, and the list of jobs it asks for.

The schema (workflow/schemas/config.schema.yaml) validates types, defaults and the valid names; these checks
cross-reference the sections (a run's recipe must be defined, a trainable model needs a loss) and name the
valid choices in every error.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from pathlib import Path

import yaml

from specrec import tuning
from specrec.data.sources import DATASETS
from specrec.losses import REGULARIZERS
from specrec.models import MODELS, option_names
from specrec.recipes import NO_RECIPE, RecipeError, build_loss, resolve
from specrec.runs import RunName
from specrec.text.encode import text_model_slug

__all__ = [
    "ConfigError",
    "check_config",
    "coerce_to_schema",
    "schema_checked",
    "schema_errors",
    "job_resources",
    "plain_resources",
    "nvidia_gpu_present",
    "model_needs_kg",
    "prepare_settings",
    "recipe_needs_item_data",
    "run_targets",
    "split_seed",
    "split_settings",
    "text_model_slug",
]


class ConfigError(ValueError):
    pass


def _resolve_ref(schema: dict, root: dict) -> dict:
    """A `$ref` to this document's `#/$defs/...`, followed."""
    while "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _alternatives(schema: dict, root: dict) -> list[dict]:
    schema = _resolve_ref(schema, root)
    nested = schema.get("oneOf", []) + schema.get("anyOf", [])
    return [schema] if not nested else [alt for option in nested for alt in _alternatives(option, root)]


TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _typed_reading(value: str, schema: dict, root: dict):
    """The YAML scalar a string spells, where the schema allows that type (a number, an integer, a boolean or
    null); None where it should stay a string."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return None  # the schema check names it
    if isinstance(parsed, str):
        try:
            parsed = float(parsed)  # YAML 1.1 reads 1e-3 (no dot) as a string
        except ValueError:
            return None
    for option in _alternatives(schema, root):
        types = option.get("type", [])
        for name in [types] if isinstance(types, str) else types:
            if name in TYPES and TYPES[name](parsed):
                return (parsed,)
    return None


def coerce_to_schema(value, schema: dict, root: dict | None = None):
    """`value` with every string the schema does not take as a string read as YAML.

    `snakemake --config key=value` hands over the values inside lists and mappings as strings
    (`seeds='[1,2,3]'` arrives as ['1', '2', '3']): where the schema asks for a number, an integer, a
    boolean or null, such a string is read as the YAML scalar it spells, so the README's overrides work.
    """
    root = schema if root is None else root
    schema = _resolve_ref(schema, root)
    if isinstance(value, dict):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        default = extra if isinstance(extra, dict) else {}
        return {
            key: coerce_to_schema(item, properties.get(key, default), root) for key, item in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items", {})
        return [coerce_to_schema(item, items if isinstance(items, dict) else {}, root) for item in value]
    if isinstance(value, str) and (reading := _typed_reading(value, schema, root)) is not None:
        return reading[0]
    return value


def schema_errors(config: dict, schema_path: str | Path) -> list[str]:
    """Every way `config` breaks the schema, each naming the config key, the value, what the key expects
    and where to fix it (an empty list when the config is valid)."""
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(Path(schema_path).read_text())
    messages = []
    for error in sorted(
        Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path)
    ):
        key = ".".join(map(str, error.absolute_path)) or "(top level)"
        described = _resolve_ref(error.schema, schema).get("description", "")
        hint = f" The key is: {' '.join(described.split())}" if described else ""
        if error.validator == "additionalProperties":
            known = sorted(_resolve_ref(error.schema, schema).get("properties", {}))
            hint = f" Valid keys here: {', '.join(known)}." if known else hint
        shown = "" if isinstance(error.instance, dict | list) else f" = {error.instance!r}"
        message = error.message if len(error.message) < 200 else error.message[:200] + "..."
        messages.append(
            f"config key {key}{shown}: {message}.{hint} Fix it in your config file (config/README.md "
            "documents every key) or in --config."
        )
    return messages


def schema_checked(config: dict, schema_path: str | Path) -> dict:
    """The config with command-line strings read as the types the schema asks for; a ConfigError listing
    every key that still breaks the schema. (Snakemake's `validate` then fills in the defaults.)"""
    schema = yaml.safe_load(Path(schema_path).read_text())
    config = coerce_to_schema(config, schema)
    errors = schema_errors(config, schema_path)
    if errors:
        raise ConfigError(
            "the config does not fit workflow/schemas/config.schema.yaml:\n- " + "\n- ".join(errors)
        )
    return config


def check_config(config: dict) -> None:
    if not any(config["runs"].values()):
        raise ConfigError(
            "config key runs: every model's list of runs is empty, so there is nothing to train or fit; "
            "add one, e.g. runs: {popularity: [none], mf: [bpr]}"
        )
    _check_names("dataset", config["datasets"], DATASETS.names())
    for dataset in config["datasets"]:
        fractions = split_settings(config, dataset)["fractions"]
        if abs(sum(fractions) - 1.0) > 1e-9:
            raise ConfigError(f"split fractions of {dataset} must sum to 1, got {fractions}")
    _check_names("model", config["runs"], MODELS.names())
    for model, options in config["model_options"].items():
        # models take **_ (the job passes every model the same data), so a typo would be silently ignored
        _check_names(f"key of model_options.{model}", options, option_names(model))
    for model, recipes in config["runs"].items():
        if not MODELS[model].trainable:
            _check_names(f"recipe of model {model!r}", recipes, [NO_RECIPE])
            continue
        for name in recipes:
            if name == NO_RECIPE:  # fitted models only: a trained one needs a loss
                valid = ", ".join(sorted(config["recipes"]))
                raise ConfigError(f"model {model!r}: unknown recipe {name!r}; valid names: {valid}")
            if RunName.parse(name).setting:
                raise ConfigError(f"model {model!r}, run {name!r}: put settings in tuning.grids")
            for run in tuning.expand_run(name, tuning.configured_grids(config)):
                try:
                    # build the loss, so a misspelt parameter (in a recipe or a grid) stops the workflow
                    # before any job runs rather than when its training job starts
                    build_loss(resolve(config, run, model)["loss"])
                except (RecipeError, tuning.GridError) as error:
                    raise ConfigError(f"model {model!r}: {error}") from None
    for name in config["recipes"]:  # every defined recipe's loss and parameters, run or not
        try:
            build_loss(resolve(config, name)["loss"])
        except RecipeError as error:
            raise ConfigError(f"recipe {name!r}: {error}") from None
    # a grid may go unused (a study config narrows the runs of another), but must name a defined recipe
    unknown = sorted(
        name for name in tuning.configured_grids(config) if RunName.parse(name).base not in config["recipes"]
    )
    if unknown:
        raise ConfigError(f"tuning.grids names undefined recipes {', '.join(map(repr, unknown))}")


def check_resource_rules(config: dict, rules: list[str]) -> None:
    """Every entry of `resources` is `default` or a rule of the workflow: one under an old or misspelt rule
    name (`diversity`, now part of `train`) would silently ask a cluster for nothing."""
    _check_names("rule in config key resources", config.get("resources", {}), ["default", *sorted(rules)])


def _check_names(what: str, given, valid: list[str]) -> None:
    unknown = [name for name in given if name not in valid]
    if unknown:
        valid_names = ", ".join(valid) if valid else "none"
        raise ConfigError(f"unknown {what} {', '.join(map(repr, unknown))}; valid names: {valid_names}")


def prepare_settings(config: dict, dataset: str) -> dict:
    """Keyword arguments of specrec.data.prepare.prepare for one dataset."""
    section = config["prepare"]
    return {
        "rating_threshold": section["rating_threshold"].get(dataset),
        "kcore": section["kcore"],
        "bad_rows": section["bad_rows"],
    }


def split_settings(config: dict, dataset: str) -> dict:
    """protocol, fractions and valid_fraction of one dataset: the global ones, then its overrides."""
    section = config["split"]
    settings = {key: section[key] for key in ("protocol", "fractions", "valid_fraction")}
    return settings | section["per_dataset"].get(dataset, {})


def model_needs_kg(model: str) -> bool:
    """Does the model train on the item knowledge graph (KGCN)?"""
    return bool(getattr(MODELS[model], "needs_kg", False))


def recipe_needs_item_data(resolved: dict) -> bool:
    """Does a resolved recipe have a term built from item metadata and text (the contrastive task)?"""
    terms = resolved.get("regularizers", [])
    return any(getattr(REGULARIZERS[term["name"]], "builds_term", False) for term in terms)


def split_seed(config: dict, run_seed: int) -> int:
    """The seed of the split a run trains on: `split.seed` when set (one split, several training seeds, as
    KGCN's fixed seed 555), else the run's own seed (a new split per seed, as StableRankReg)."""
    fixed = config["split"].get("seed")
    return run_seed if fixed is None else int(fixed)


def run_targets(config: dict) -> list[dict]:
    """One entry per training job: every dataset x (model, recipe, point of its grid) x seed."""
    pairs = [
        (model, run)
        for model, recipes in config["runs"].items()
        for recipe in recipes
        for run in tuning.expand_run(recipe, tuning.configured_grids(config))
    ]
    return [
        {"dataset": dataset, "model": model, "recipe": recipe, "seed": seed}
        for dataset, (model, recipe), seed in product(config["datasets"], pairs, config["seeds"])
    ]


def job_resources(config: dict, rule: str, gpu_present: bool, given: dict | None = None) -> dict:
    """What a job of `rule` asks a cluster for: `resources.default`, then `resources.{rule}`, then `given`
    (a profile's `set-resources` or the command line's `--set-resources`, which Snakemake puts last too).
    `gpu: auto` is 1 where Snakemake runs on a machine with an NVIDIA GPU, else 0; cpus_per_gpu only goes
    with a GPU."""
    section = config.get("resources", {})
    merged = dict(section.get("default", {})) | dict(section.get(rule, {})) | dict(given or {})
    if merged.get("gpu") == "auto":
        merged["gpu"] = 1 if gpu_present else 0
    if not merged.get("gpu"):
        merged.pop("cpus_per_gpu", None)
    return merged


def plain_resources(given: Mapping) -> dict:
    """The values of a rule's resources as Snakemake holds those a profile sets (`Resource` objects, or
    plain values), without the ones that are functions of a job (Snakemake evaluates them per job)."""
    plain = {}
    for name in given:
        resource = given[name]
        if not hasattr(resource, "is_evaluable"):
            plain[name] = resource
        elif not resource.is_evaluable():
            plain[name] = resource.value
    return plain


def nvidia_gpu_present() -> bool:
    """Cheap (no CUDA initialisation, no torch import): the kernel driver lists a GPU."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def read_config_file(path: str | Path) -> dict:
    """A YAML config file as a mapping; a syntax error names the file, the line and the column (Snakemake's
    own loader says only that some config file is not valid JSON or YAML)."""
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); fix the file and run again") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys at the top level")
    return loaded


def main(argv: list[str] | None = None) -> None:
    """`python -m specrec.config FILE...`: check config files the way the workflow will, before Snakemake
    runs: each file's YAML (naming file, line and column), then the merge onto config/config.yaml against
    the schema and the cross-checks."""
    import argparse

    from snakemake.utils import update_config, validate

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="config files, in the order of --configfile")
    parser.add_argument("--base", type=Path, default=Path("config/config.yaml"), help="the default config")
    parser.add_argument("--schema", type=Path, default=Path("workflow/schemas/config.schema.yaml"))
    args = parser.parse_args(argv)
    try:
        config = read_config_file(args.base)
        for path in args.files:
            update_config(config, read_config_file(path))
        config = schema_checked(config, args.schema)
        validate(config, str(args.schema))
        check_config(config)
    except ConfigError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"ok: {len(run_targets(config))} training jobs")


if __name__ == "__main__":
    main()
