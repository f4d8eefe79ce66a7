from pathlib import Path

from snakemake.utils import validate

from specrec.groups import FAILED, GROUP_FOLDER, RUN_FILES, group_runs, group_size
from specrec.runs import RUN_FOLDER, recipe_of, reference_of
from specrec.models import MODELS
from specrec.outputs import FIGURES, HEADLINE, TABLE_FORMATS, TABLES
from specrec.losses.directspec import filter_point
from specrec.recipes import resolve
from specrec.train import run_settings
from specrec.config import (
    check_config,
    job_resources,
    plain_resources,
    nvidia_gpu_present,
    model_needs_kg,
    prepare_settings,
    run_targets,
    schema_checked,
    split_seed,
    split_settings,
    text_model_slug,
)

SCHEMA = Path(workflow.current_basedir, "..", "schemas", "config.schema.yaml")
# --config values inside lists and mappings arrive as strings: read them as the schema's types, then name
# every key that breaks the schema before Snakemake's validate fills in the defaults
config.update(schema_checked(config, SCHEMA))
validate(config, "../schemas/config.schema.yaml")
check_config(config)

RUNS = run_targets(config)  # one dict per (dataset, model, recipe, seed)
GPU_HERE = nvidia_gpu_present()


def rule_resources(rule):
    """A job's cluster request (gpu, cpus_per_gpu, mem_mb, runtime): the config's `resources`, then a
    profile's `set-resources`, so that `train.group_size: auto` sees training go to GPU
    nodes."""
    given = workflow.resource_settings.overwrite_resources.get(rule, {})
    return job_resources(config, rule, GPU_HERE, plain_resources(given))


# the runs each training job trains
GROUPS = group_runs(RUNS, group_size(config["train"], rule_resources("train")))


TEXT_SLUG = text_model_slug(config["text"]["model"])


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    model="[A-Za-z0-9_-]+",
    recipe="[A-Za-z0-9_+.~=,-]+",
    group="[A-Za-z0-9_+.~=,-]+",
    seed=r"\d+",


def run_dirs(dataset=None):
    return [
        RUN_FOLDER.format(**run) for run in RUNS if dataset in (None, run["dataset"])
    ]


def run_file(name):
    """A file of a run, with the run's wildcards: RUN_FOLDER/name."""
    return f"{RUN_FOLDER}/{name}"


def run_files(name, dataset=None):
    return [f"{directory}/{name}" for directory in run_dirs(dataset)]


def split_file(name):
    """Input function: a file of the split a run trains on (split.seed, or the run's own seed)."""

    def path(wildcards):
        seed = split_seed(config, int(wildcards.seed))
        return f"results/data/{wildcards.dataset}/split/seed{seed}/{name}"

    return path


def kg_if_needed(wildcards):
    """The item knowledge graph, for models that train on it (KGCN)."""
    if not model_needs_kg(wildcards.model):
        return []
    return f"results/data/{wildcards.dataset}/kg/triples.parquet"


def group_folder(wildcards):
    """Input function: the folder the training job of a run's group writes the run's files into."""
    dataset, model, seed = wildcards.dataset, wildcards.model, wildcards.seed
    group = GROUPS.group(dataset, model, wildcards.recipe, seed)
    return GROUP_FOLDER.format(dataset=dataset, model=model, group=group, seed=seed)


def group_recipes(wildcards):
    """Param: each run of a group with its recipe, resolved from the config."""
    dataset, model, seed = wildcards.dataset, wildcards.model, wildcards.seed
    runs = GROUPS.members(dataset, model, wildcards.group, seed)
    return {name: resolve(config, name, wildcards.model) for name in runs}


def text_embeddings_if_enabled(wildcards):
    """The dataset's synopsis embeddings when text encoding is on (else no input)."""
    if not config["text"]["enabled"]:
        return []
    return f"results/data/{wildcards.dataset}/text/{TEXT_SLUG}.npy"


def stats_files():
    """The dataset statistics: as prepared (per provided part), then per seeded split."""
    prepared = expand("results/data/{dataset}/stats.csv", dataset=config["datasets"])
    return prepared + expand(
        "results/data/{dataset}/split/seed{seed}/stats.csv",
        dataset=config["datasets"],
        seed=sorted({split_seed(config, seed) for seed in config["seeds"]}),
    )


def kg_stats_files():
    """The knowledge-graph statistics of the datasets a KG model (KGCN) trains on."""
    datasets = {run["dataset"] for run in RUNS if model_needs_kg(run["model"])}
    return [f"results/data/{dataset}/kg/stats.csv" for dataset in sorted(datasets)]


# datasets with a trained run: spectra, training curves and convergence need one (popularity is fitted,
# its one-dimensional "embedding" has no spectrum), so a popularity-only study skips them
TRAINED_DATASETS = sorted(
    {run["dataset"] for run in RUNS if MODELS[run["model"]].trainable}
)


def headline_files():
    """The study's headline figure (and its computed caption), wherever a trained model ran."""
    if not TRAINED_DATASETS:
        return []
    return expand("results/figures/headline.{ext}", ext=["pdf", "png"])


def figure_datasets(applies):
    """The datasets a figure of the catalogue is drawn for: only where the study has what it compares."""
    if applies == "all":
        return config["datasets"]
    if applies == "trained":
        return TRAINED_DATASETS
    return {
        "speedup": speedup_datasets,
        "negatives": negatives_datasets,
        "sensitivity": sensitivity_datasets,
    }[applies]()


def figure_files():
    files = headline_files()
    for figure in FIGURES:
        files += expand(
            "results/figures/{dataset}/{name}.{ext}",
            dataset=figure_datasets(figure.applies),
            name=figure.name,
            ext=["pdf", "png"],
        )
    return files


def speedup_datasets():
    """Datasets where some model ran a base recipe and also that recipe with add-ons (`bpr+sr_warm`)."""
    ran = {(run["dataset"], run["model"], recipe_of(run["recipe"])) for run in RUNS}
    return sorted({d for d, m, r in ran if (d, m, reference_of(r)) in ran})


def negatives_datasets():
    """Datasets where some model ran a sampled-negative loss with several numbers of negatives."""
    seen = {}
    for run in RUNS:
        # the recipe as configured: a grid's settings are tuned away, distinct recipes are compared
        recipe = resolve(config, recipe_of(run["recipe"]))
        if recipe.get("n_negatives", 0) >= 1:
            key = (run["dataset"], run["model"], recipe["loss"]["name"])
            seen.setdefault(key, set()).add(recipe["n_negatives"])
    return sorted({key[0] for key, counts in seen.items() if len(counts) > 1})


def sensitivity_datasets():
    """Datasets where some model ran DirectSpec(+) with several values of alpha or of tau (adaptive
    temperatures have none), as the sensitivity figure reads them."""
    seen = {}
    for run in RUNS:
        loss = resolve(config, run["recipe"], run["model"]).get("loss", {})
        point = filter_point(loss)
        if point is not None:
            alphas, taus = seen.setdefault(
                (run["dataset"], run["model"], loss["name"]), (set(), set())
            )
            alphas.add(point[0])
            taus.update({point[1]} - {None})
    return sorted(
        {
            key[0]
            for key, (alphas, taus) in seen.items()
            if max(len(alphas), len(taus)) > 1
        }
    )


def table_files():
    tables = [t for t in TABLES if t.applies == "all" or TRAINED_DATASETS]
    return [t.path(ext) for t in tables for ext in TABLE_FORMATS] + [
        "results/index.csv"
    ]


# the selection of every grid's setting, which every figure and table reads
TUNING_TABLE = next(t for t in TABLES if t.name == "tuning").path("csv")


def table_outputs(writer):
    """The named outputs of the catalogue's tables that the rule `writer` writes (each table's
    `{name}_csv` in the report with its caption, `{name}_md` and `{name}_tex`)."""
    outputs = {}
    for table in TABLES:
        if table.written_by == writer:
            outputs |= {f"{table.name}_{ext}": table.path(ext) for ext in TABLE_FORMATS}
            outputs[f"{table.name}_csv"] = report(
                table.path("csv"),
                caption=f"../report/{table.caption}.rst",
                category="Tables",
            )
    return outputs


REPORT_DIR = Path(workflow.current_basedir, "..", "report").resolve()
# the headline's caption is computed from the runs by its own job (in the working directory)
HEADLINE_CAPTION = Path("results/figures/headline.rst").resolve()


def caption_files():
    """The report captions (workflow/report/*.rst), which the overview page shows too."""
    return sorted(REPORT_DIR.glob("*.rst"))


def all_targets():
    # every file a run leaves, so that one deleted (or lost to a killed forced rerun) is made again
    # rather than the tables silently keeping the run's older numbers
    targets = sum((run_files(name) for name in RUN_FILES), [])
    targets += figure_files() + table_files() + ["results/overview.html"]
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


def model_options(wildcards):
    return config["model_options"].get(wildcards.model, {})
