from specrec import plots
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out, params = snakemake.input, snakemake.output, snakemake.params
# Colours per recipe and line styles per model come from the whole config, so they match across figures;
# tuned recipes are drawn with the setting chosen on validation.
plots.draw(
    params.function,
    inputs.runs,
    out.pdf,
    out.png,
    recipes=params.recipes,
    models=params.models,
    selection=read_selection(inputs.tuning),
)
