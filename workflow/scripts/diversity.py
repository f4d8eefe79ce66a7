from pathlib import Path

from specrec.diversity import analyse_run
from specrec.runtime import log_to

log_to(snakemake.log[0])
inputs, outputs = snakemake.input, snakemake.output
analyse_run(
    Path(inputs.top_lists),
    Path(inputs.per_user),
    Path(inputs.item_meta),
    Path(inputs.train),
    Path(inputs.text) if inputs.text else None,
    snakemake.params.ks,
    Path(outputs.diversity),
    Path(outputs.activity),
)
