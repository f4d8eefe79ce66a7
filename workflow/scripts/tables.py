from specrec import tables
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out = snakemake.input, snakemake.output
chosen = {"selection": read_selection(inputs.tuning)}
tables.results_table(
    inputs.metrics,
    out.results_csv,
    out.results_md,
    baseline=snakemake.params.baseline,
    recalls=snakemake.params.recalls,
    per_user_files=inputs.per_user,
    **chosen,
)
tables.spectrum_table(inputs.spectra, out.spectrum_csv, out.spectrum_md, **chosen)
tables.dataset_table(inputs.stats, out.datasets_csv, out.datasets_md, kg_stats_files=inputs.kg_stats)
tables.beyond_accuracy_table(
    inputs.metrics,
    inputs.diversity,
    inputs.activity,
    out.beyond_accuracy_csv,
    out.beyond_accuracy_md,
    **chosen,
)
tables.significance_table(inputs.per_user, out.significance_csv, out.significance_md, **chosen)
