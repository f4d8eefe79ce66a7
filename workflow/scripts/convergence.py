from specrec.runtime import log_to
from specrec.tables import convergence_table

log_to(snakemake.log[0])
convergence_table(snakemake.input.epochs, snakemake.output.csv, snakemake.output.md)
