from specrec import tables
from specrec.outputs import table_paths
from specrec.runtime import log_to
from specrec.tuning import read_selection

log_to(snakemake.log[0])
inputs, out = snakemake.input, snakemake.output
chosen = {"selection": read_selection(inputs.tuning)}
tables.results_table(
    inputs.metrics,
    **table_paths(out, "results"),
    baseline=snakemake.params.baseline,
    recalls=snakemake.params.recalls,
    per_user_files=inputs.per_user,
    **chosen,
)
tables.spectrum_table(inputs.spectra, **table_paths(out, "spectrum"), **chosen)
tables.dataset_table(inputs.stats, **table_paths(out, "datasets"), kg_stats_files=inputs.kg_stats)
tables.beyond_accuracy_table(
    inputs.metrics, inputs.diversity, inputs.activity, **table_paths(out, "beyond_accuracy"), **chosen
)
tables.significance_table(inputs.per_user, **table_paths(out, "significance"), **chosen)
