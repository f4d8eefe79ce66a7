from specrec.runtime import log_to, set_threads
from specrec.text.encode import encode_items

log_to(snakemake.log[0])
set_threads(snakemake.threads)
encode_items(
    snakemake.input.item_meta,
    snakemake.output.embeddings,
    snakemake.output.manifest,
    model=snakemake.params.model,
    batch_size=snakemake.params.batch_size,
    device=snakemake.params.device,
)
