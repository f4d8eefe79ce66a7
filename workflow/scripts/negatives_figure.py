from specrec import plots
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out = snakemake.input, snakemake.output
plots.plot_negatives(inputs.metrics, out.pdf, out.png, selection=read_selection(inputs.tuning))
