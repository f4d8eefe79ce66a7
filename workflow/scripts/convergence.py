from specrec.runtime import log_to
from specrec.tables import convergence_table
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out = snakemake.input, snakemake.output
convergence_table(inputs.epochs, out.csv, out.md, selection=read_selection(inputs.tuning))
