from pathlib import Path

from specrec.kg import write_dataset_kg
from specrec.runtime import log_to

log = log_to(snakemake.log[0])
manifest = snakemake.input.kg_manifest  # empty unless the dataset has a published (Satori) KG
kg = write_dataset_kg(
    snakemake.wildcards.dataset,
    snakemake.input.item_meta,
    Path(snakemake.output.stats).parent,
    relations=snakemake.params.relations,
    kg_raw_dir=Path(manifest).parent if manifest else None,
)
log.info("KG of %s: %s", snakemake.wildcards.dataset, kg.stats().iloc[0].to_dict())
