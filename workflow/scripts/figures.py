from specrec import plots
from specrec.runtime import log_to

log_to(snakemake.log[0])
spectra, epochs, out, recipes = (
    snakemake.input.spectra,
    snakemake.input.epochs,
    snakemake.output,
    snakemake.params.recipes,
)
plots.plot_spectrum(spectra, out.spectrum_pdf, out.spectrum_png, recipes)
plots.plot_stable_rank(epochs, out.stable_rank_pdf, out.stable_rank_png, recipes)
plots.plot_validation_curve(epochs, out.validation_pdf, out.validation_png, recipes)
plots.plot_alignment_uniformity(spectra, out.alignment_uniformity_pdf, out.alignment_uniformity_png, recipes)
