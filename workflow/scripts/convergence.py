from specrec.outputs import table_paths
from specrec.runtime import log_to
from specrec.tables import convergence_table
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs = snakemake.input
selection = read_selection(inputs.tuning)
convergence_table(inputs.epochs, **table_paths(snakemake.output, "convergence"), selection=selection)
