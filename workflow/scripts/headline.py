from specrec.headline import headline
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out, params = snakemake.input, snakemake.output, snakemake.params
headline(
    inputs.metrics,
    inputs.spectra,
    inputs.epochs,
    {"pdf": out.pdf, "png": out.png, "caption": out.caption, "json": out.json},
    inputs.template,
    recipes=params.recipes,
    models=params.models,
    selection=read_selection(inputs.tuning),
)
