from specrec import tables
from specrec.runtime import log_to

log_to(snakemake.log[0])
inputs, out = snakemake.input, snakemake.output
tables.results_table(inputs.metrics, out.results_csv, out.results_md)
tables.spectrum_table(inputs.spectra, out.spectrum_csv, out.spectrum_md)
tables.dataset_table(inputs.stats, out.datasets_csv, out.datasets_md)
