from pathlib import Path

from specrec.data.split import write_split
from specrec.runtime import log_to

log_to(snakemake.log[0])
write_split(
    snakemake.input.interactions,
    snakemake.input.user_map,
    snakemake.input.item_meta,
    Path(snakemake.output.meta).parent,
    protocol=snakemake.params.protocol,
    fractions=tuple(snakemake.params.fractions),
    seed=int(snakemake.wildcards.seed),
)
