from specrec import tables
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs = snakemake.input
selection = read_selection(inputs.tuning)
tables.results_index(inputs.metrics, inputs.spectra, inputs.diversity, snakemake.output.index, selection)
