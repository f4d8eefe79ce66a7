from specrec.runtime import log_to
from specrec.train import RunSpec, run

log_to(snakemake.log[0])
run(RunSpec.from_job(snakemake))
