from specrec import tables
from specrec.runtime import log_to

log_to(snakemake.log[0])
inputs = snakemake.input
tables.results_index(inputs.metrics, inputs.spectra, inputs.diversity, snakemake.output.index)
