from specrec.runtime import log_to
from specrec.tables import tuning_table

log_to(snakemake.log[0])
out = snakemake.output
tuning_table(snakemake.input.metrics, out.csv, out.md, metric=snakemake.params.metric)
