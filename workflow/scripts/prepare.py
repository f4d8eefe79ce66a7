from pathlib import Path

from specrec.data.prepare import prepare
from specrec.runtime import log_to

log = log_to(snakemake.log[0])
summary = prepare(
    snakemake.wildcards.dataset,
    Path(snakemake.input.manifest).parent,
    Path(snakemake.output.interactions).parent,
    **snakemake.params.settings,
)
log.info("prepared %s: %s", snakemake.wildcards.dataset, summary)
