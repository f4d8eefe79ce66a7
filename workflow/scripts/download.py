from pathlib import Path

from specrec.data.download import materialize, resolve_mirror
from specrec.runtime import log_to

log_to(snakemake.log[0])
# Read from the config, not passed as a param: where verified bytes come from must not trigger re-runs.
mirror = resolve_mirror(snakemake.config.get("mirror"))
materialize(snakemake.wildcards.dataset, Path(snakemake.output.manifest).parent, mirror)
