from specrec import plots
from specrec.runtime import log_to

log_to(snakemake.log[0])
out, params = snakemake.output, snakemake.params
plots.plot_convergence_speedup(
    snakemake.input.epochs, out.pdf, out.png, recipes=params.recipes, models=params.models
)
