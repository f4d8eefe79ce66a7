from specrec import plots
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out = snakemake.input, snakemake.output
spectra, epochs = inputs.spectra, inputs.epochs
# Colours per recipe and line styles per model come from the whole config, so they match across figures;
# tuned recipes are drawn with the setting chosen on validation.
style = {
    "recipes": snakemake.params.recipes,
    "models": snakemake.params.models,
    "selection": read_selection(inputs.tuning),
}
plots.plot_spectrum(spectra, out.spectrum_pdf, out.spectrum_png, **style)
plots.plot_stable_rank(epochs, out.stable_rank_pdf, out.stable_rank_png, **style)
plots.plot_validation_curve(epochs, out.validation_pdf, out.validation_png, **style)
plots.plot_alignment_uniformity(spectra, out.alignment_uniformity_pdf, out.alignment_uniformity_png, **style)
plots.plot_activity(inputs.activity, out.activity_pdf, out.activity_png, **style)
plots.plot_diversity(inputs.diversity, out.diversity_pdf, out.diversity_png, **style)
