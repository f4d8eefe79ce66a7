from specrec import plots
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out, params = snakemake.input, snakemake.output, snakemake.params
plots.plot_convergence_speedup(
    inputs.epochs,
    out.pdf,
    out.png,
    recipes=params.recipes,
    models=params.models,
    selection=read_selection(inputs.tuning),
)
