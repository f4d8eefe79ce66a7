from specrec import plots
from specrec.runtime import log_to

log_to(snakemake.log[0])
plots.plot_filter_sensitivity(snakemake.input.metrics, snakemake.output.pdf, snakemake.output.png)
