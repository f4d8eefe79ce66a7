from pathlib import Path

from specrec.data.split import write_split
from specrec.runtime import log_to

log_to(snakemake.log[0])
settings = dict(snakemake.params.settings)
write_split(
    snakemake.input.interactions,
    snakemake.input.user_map,
    snakemake.input.item_meta,
    Path(snakemake.output.meta).parent,
    protocol=settings["protocol"],
    fractions=tuple(settings["fractions"]),
    valid_fraction=settings["valid_fraction"],
    seed=int(snakemake.wildcards.seed),
)
