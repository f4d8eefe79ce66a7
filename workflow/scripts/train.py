from pathlib import Path

from specrec.runtime import log_to
from specrec.train import RunSpec, TrainSettings, run

log_to(snakemake.log[0])
wildcards = snakemake.wildcards
run(
    RunSpec(
        dataset=wildcards.dataset,
        model=wildcards.model,
        recipe_name=wildcards.recipe,
        recipe=dict(snakemake.params.recipe),
        seed=int(wildcards.seed),
        split_dir=Path(snakemake.input.meta).parent,
        run_dir=Path(snakemake.output.metrics).parent,
        settings=TrainSettings.from_config(snakemake.params.settings),
        threads=snakemake.threads,
    )
)
