from pathlib import Path

from specrec.data.download import materialize, resolve_mirror
from specrec.data.sources import get_source
from specrec.runtime import log_to

log_to(snakemake.log[0])
# As in download.py: the mirror is read from the config, not a param, so it triggers no re-run.
mirror = resolve_mirror(snakemake.config.get("mirror"))
source = get_source(snakemake.wildcards.dataset).kg_download()
materialize(source, Path(snakemake.output.manifest).parent, mirror)
