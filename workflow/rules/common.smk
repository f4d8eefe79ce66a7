from snakemake.utils import validate

from specrec.config import (
    check_config,
    prepare_settings,
    run_recipe,
    run_targets,
    split_settings,
    text_model_slug,
)

validate(config, "../schemas/config.schema.yaml")
check_config(config)

RUNS = run_targets(config)  # one dict per (dataset, model, recipe, seed)
TEXT_SLUG = text_model_slug(config["text"]["model"])


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    model="[A-Za-z0-9_-]+",
    recipe="[A-Za-z0-9_+.-]+",
    seed=r"\d+",


def run_dirs(dataset=None):
    return [
        "results/runs/{dataset}/{model}/{recipe}/seed{seed}".format(**run)
        for run in RUNS
        if dataset in (None, run["dataset"])
    ]


def run_files(name, dataset=None):
    return [f"{directory}/{name}" for directory in run_dirs(dataset)]


def stats_files():
    """The dataset statistics: as prepared (per provided part), then per seeded split."""
    prepared = expand("results/data/{dataset}/stats.csv", dataset=config["datasets"])
    return prepared + expand(
        "results/data/{dataset}/split/seed{seed}/stats.csv",
        dataset=config["datasets"],
        seed=config["seeds"],
    )


def figure_files():
    names = ["spectrum", "stable_rank", "validation", "alignment_uniformity"]
    return expand(
        "results/figures/{dataset}/{name}.{ext}",
        dataset=config["datasets"],
        name=names,
        ext=["pdf", "png"],
    )


def all_targets():
    targets = run_files("spectrum.json") + figure_files()
    targets += expand(
        "results/tables/{name}.{ext}",
        name=["results", "spectrum", "datasets", "convergence"],
        ext=["csv", "md"],
    )
    if config["text"]["enabled"]:
        targets += expand(
            "results/data/{dataset}/text/{slug}.npy",
            dataset=config["datasets"],
            slug=TEXT_SLUG,
        )
    return targets


def prepare_params(wildcards):
    return prepare_settings(config, wildcards.dataset)


def split_params(wildcards):
    return split_settings(config, wildcards.dataset)


def recipe_of(wildcards):
    return run_recipe(config, wildcards.recipe)


def model_options(wildcards):
    return config["model_options"].get(wildcards.model, {})
