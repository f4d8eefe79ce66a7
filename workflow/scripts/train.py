from pathlib import Path

from specrec.runtime import log_to
from specrec.train import RunSpec, TrainSettings, run

log_to(snakemake.log[0])
wildcards, params, inputs = snakemake.wildcards, snakemake.params, snakemake.input
run(
    RunSpec(
        dataset=wildcards.dataset,
        model=wildcards.model,
        recipe_name=wildcards.recipe,
        recipe=dict(params.recipe),
        seed=int(wildcards.seed),
        split_dir=Path(inputs.meta).parent,
        run_dir=Path(snakemake.output.metrics).parent,
        settings=TrainSettings.from_config(params.settings),
        threads=snakemake.threads,
        model_options=dict(params.model_options),
        # outside the outputs: Snakemake deletes a failed job's outputs, the resume point must survive
        checkpoint_dir=Path(params.checkpoint_dir),
        kg_dir=Path(inputs.kg).parent if inputs.kg else None,
        item_meta=Path(inputs.item_meta) if inputs.item_meta else None,
        text_embeddings=Path(inputs.text) if inputs.text else None,
    )
)
