from specrec.runtime import log_to
from specrec.spectral import write_spectrum

log_to(snakemake.log[0])
wildcards = snakemake.wildcards
write_spectrum(
    snakemake.input.embeddings,
    snakemake.input.test,
    snakemake.output.spectrum,
    identity={
        "dataset": wildcards.dataset,
        "model": wildcards.model,
        "recipe": wildcards.recipe,
        "seed": int(wildcards.seed),
    },
)
