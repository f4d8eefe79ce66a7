from pathlib import Path

from specrec.data.download import materialize
from specrec.runtime import log_to

log_to(snakemake.log[0])
materialize(snakemake.wildcards.dataset, Path(snakemake.output.manifest).parent, snakemake.params.mirror)
