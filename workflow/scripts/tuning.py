from specrec.outputs import table_paths
from specrec.runtime import log_to
from specrec.tables import tuning_table

log_to(snakemake.log[0])
tuning_table(
    snakemake.input.metrics, **table_paths(snakemake.output, "tuning"), metric=snakemake.params.metric
)
