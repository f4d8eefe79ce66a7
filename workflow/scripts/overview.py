from pathlib import Path

from specrec.report import build_overview
from specrec.runtime import log_to

log_to(snakemake.log[0])
inputs = snakemake.input
captions = Path(inputs.captions[0]).parent  # workflow/report
build_overview(inputs.figures, inputs.tables, captions, snakemake.params.config, snakemake.output[0])
