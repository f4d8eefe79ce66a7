"""Runs trained together: one training job trains a group of runs in one process.

Why: a run of a paper study trains for seconds to minutes, while its own process costs seconds of Python
start, imports, data loading and evaluation set-up, and a cluster is asked for few, long jobs (issue 17).
A group loads its split once and trains its members with the one training loop (`specrec.train.run_stack`),
then computes each member's spectrum and diversity in the same process. Every run keeps its own seed,
batches, optimiser, early stopping and checkpoint, so its files are the ones it would have alone
(tests/test_groups.py); `train.group_size: 1` is one run per job. On a GPU (`train.stack`), the members that
differ only in optimiser settings and regularisers train as one stack: one step for all of them, their files
equal to the runs alone within float rounding.

A group's members are runs of the same dataset, model, seed and base recipe (the base's grid points and its
add-on runs: `bpr~lr=0.01`, `bpr+sr_warm~lr=0.01`, ...), at most `group_size` of them in the config's order.
A group is named `{base}.g{n}` (never with a comma, which Snakemake's job arguments on a cluster cannot
carry). The group job writes its members' files into its own folder (GROUP_FOLDER/{run}/, deleted once every
member's files are in place); the rule run_files links each run's files into RUN_FOLDER, so that every reader
of a run stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from specrec import io
from specrec.config import recipe_needs_item_data
from specrec.diversity import analyse_run
from specrec.runs import CHECKPOINT_FOLDER, RunName
from specrec.runtime import pick_device, set_threads
from specrec.spectral import write_spectrum
from specrec.train import (
    LossDiverged,
    RunSpec,
    TrainSettings,
    checkpoint_path,
    load_data,
    run_stack,
    stack_key,
)

log = logging.getLogger("specrec.groups")

GROUP_FOLDER = "results/groups/{dataset}/{model}/{group}/seed{seed}"
# every file a run has: the training job's, then its spectrum's and its diversity's
TRAIN_FILES = ("epochs.csv", "metrics.json", "embeddings.npz", "per_user.parquet", "top_lists.npz")
RUN_FILES = (*TRAIN_FILES, "spectrum.json", "diversity.json", "activity.csv")

FAILED = "failed.txt"  # in a run's folder of the group: why it did not finish

RunKey = tuple[str, str, str, int]  # dataset, model, run name, seed


@dataclass
class Groups:
    """The grouping of a study's runs: each run's group, each group's members."""

    group_of: dict[RunKey, str] = field(default_factory=dict)
    members_of: dict[RunKey, list[str]] = field(default_factory=dict)  # key: dataset, model, group, seed

    def group(self, dataset: str, model: str, recipe: str, seed: int) -> str:
        # a run the config does not list (a file asked for by name) is a group of one
        return self.group_of.get((dataset, model, recipe, int(seed)), recipe)

    def members(self, dataset: str, model: str, group: str, seed: int) -> list[str]:
        return self.members_of.get((dataset, model, group, int(seed)), [group])


# train.group_size: auto, by where training runs. On a CPU a group saves each run's process start, imports,
# data loading and analysis jobs, and a run is mostly its epochs: small groups keep every core busy to the
# end. On a GPU a group is also the most runs one stack can hold, and a stack of K runs launches each kernel
# of a step once for all K (README "Runs trained together"); 16 runs of MF or LightGCN on Gowalla hold about
# 1.2 GB of tables, gradients and Adam state. (Not yet measured on a GPU: benchmarks/stack_throughput.py.)
GROUP_SIZES = {"cpu": 4, "gpu": 16}


def group_size(train: dict, train_resources: dict) -> int:
    """The config's train.group_size; `auto` is GROUP_SIZES' size for where training runs: a GPU where
    train.device names one, or is `auto` and the training job asks for a GPU (job_resources)."""
    size, device = train["group_size"], train["device"]
    if size != "auto":
        return int(size)
    on_gpu = device.startswith("cuda") or (device == "auto" and int(train_resources.get("gpu") or 0) > 0)
    return GROUP_SIZES["gpu" if on_gpu else "cpu"]


def group_runs(runs: Sequence[dict], size: int) -> Groups:
    """Chunk the runs (run_targets' dicts) of each dataset, model, seed and base recipe into groups of at
    most `size`, in the order given."""
    if size < 1:
        raise ValueError(f"config key train.group_size = {size}: a group holds at least one run")
    families: dict[RunKey, list[str]] = {}
    for run_ in runs:
        key = (run_["dataset"], run_["model"], RunName.parse(run_["recipe"]).base, int(run_["seed"]))
        families.setdefault(key, []).append(run_["recipe"])
    groups = Groups()
    for (dataset, model, base, seed), names in families.items():
        for index, start in enumerate(range(0, len(names), size)):
            chunk = names[start : start + size]
            group = f"{base}.g{index}"
            groups.members_of[(dataset, model, group, seed)] = chunk
            for name in chunk:
                groups.group_of[(dataset, model, name, seed)] = group
    return groups


@dataclass
class GroupJob:
    """What one training job is: its runs and the files they read (`snakemake` in workflow/scripts)."""

    runs: list[RunSpec]
    test: Path  # the split's test pairs (the spectrum's alignment)
    train: Path  # the split's training pairs (the diversity's activity bins)
    item_meta: Path
    text_embeddings: Path | None
    ks: list[int]
    stack: str  # train.stack: auto, always or never (see `stacking`)

    @classmethod
    def from_job(cls, job) -> GroupJob:
        """Wildcards name the group, params carry each member's resolved recipe, the train settings its
        results depend on (run_settings) and model options; how the runs train (stack, compile) is read from
        the config; inputs are the files every member reads."""
        wildcards, params, inputs = job.wildcards, job.params, job.input
        settings = TrainSettings.from_config(params.settings)
        how = job.config["train"]
        folder = Path(job.output.group)
        text = Path(inputs.text) if inputs.text else None
        identity = {"dataset": wildcards.dataset, "model": wildcards.model, "seed": int(wildcards.seed)}
        runs = []
        for name, recipe in params.members.items():
            item_data = recipe_needs_item_data(recipe)
            runs.append(
                RunSpec(
                    **identity,
                    recipe_name=name,
                    recipe=dict(recipe),
                    split_dir=Path(inputs.meta).parent,
                    run_dir=folder / name,
                    settings=settings,
                    threads=job.threads,
                    compile=how["compile"],
                    model_options=dict(params.model_options),
                    # outside the outputs: Snakemake deletes a failed job's outputs, resume points must stay
                    checkpoint_dir=Path(CHECKPOINT_FOLDER.format(recipe=name, **identity)),
                    kg_dir=Path(inputs.kg).parent if inputs.kg else None,
                    item_meta=Path(inputs.item_meta) if item_data else None,
                    text_embeddings=text if item_data else None,
                )
            )
        files = (Path(inputs.test), Path(inputs.train), Path(inputs.item_meta), text)
        return cls(runs, *files, list(params.ks), how["stack"])


def train_group(job: GroupJob) -> list[dict]:
    """Train, then analyse, every run of the group on one load of the split: the runs that can train as
    one stack (`specrec.train.stack_key`: the grid points and add-on runs of a dot-product model's base
    loss) together, the others one after another. Each run's checkpoint stays until the whole group is
    written, so a group killed midway resumes its runs from their checkpoints. Returns the runs' metrics."""
    # the runs share their split (one input of the job) and device (a config setting no recipe overrides)
    first = job.runs[0]
    set_threads(first.threads)
    device = pick_device(first.settings.device)
    data = load_data(first.split_dir, device)
    results, failed = [], set()
    for number, specs in enumerate(stacks(job.runs, stacking(job.stack, device)), 1):
        log.info("stack %d: %s", number, ", ".join(spec.recipe_name for spec in specs))
        for spec, outcome in zip(specs, run_stack(specs, data, keep_checkpoint=True), strict=True):
            if isinstance(outcome, LossDiverged):
                # the run's own failure: the group's other runs go on, and this run's job (run_files)
                # fails with the error, as its own training job did before runs were grouped
                log.error("%s: %s", type(outcome).__name__, outcome)
                io.write_text(spec.run_dir / FAILED, f"{type(outcome).__name__}: {outcome}\n")
                failed.add(spec.recipe_name)
                continue
            results.append(outcome)
            analyse(job, spec)
    for spec in job.runs:
        if spec.recipe_name not in failed:  # a failed run keeps its last good checkpoint
            checkpoint_path(spec).unlink(missing_ok=True)
    return results


def stacking(choice: str, device: str) -> bool:
    """train.stack: `always`, `never`, or `auto`: on a GPU. There a run's step is a few dozen small kernels,
    launch-bound, and a stack of K runs launches each of them once for all; on a CPU the work of a step
    grows with K as it does for K runs one after another, and the stack's gathers along the run axis are
    slower (benchmarks/RESULTS.md, "Runs trained as one stack")."""
    if choice not in ("auto", "always", "never"):
        raise ValueError(f"config key train.stack = {choice!r}: valid values are auto, always, never")
    return choice == "always" or (choice == "auto" and device.startswith("cuda"))


def stacks(runs: list[RunSpec], together: bool = True) -> list[list[RunSpec]]:
    """The group's runs by stack key, in order of their first run; a run without a key, or every run where
    runs do not train together, is a stack alone."""
    if not together:
        return [[spec] for spec in runs]
    by_key: dict[str, list[RunSpec]] = {}
    for number, spec in enumerate(runs):
        by_key.setdefault(stack_key(spec) or f"alone {number}", []).append(spec)
    return list(by_key.values())


def analyse(job: GroupJob, spec: RunSpec) -> None:
    """spectrum.json, diversity.json and activity.csv of a trained run, from the files it wrote."""
    folder = spec.run_dir
    identity = {"dataset": spec.dataset, "model": spec.model, "recipe": spec.recipe_name, "seed": spec.seed}
    write_spectrum(folder / "embeddings.npz", job.test, folder / "spectrum.json", identity=identity)
    analyse_run(
        folder / "top_lists.npz", folder / "per_user.parquet", job.item_meta, job.train,
        job.text_embeddings, job.ks, folder / "diversity.json", folder / "activity.csv",
    )  # fmt: skip
