from specrec.groups import GroupJob, train_group
from specrec.runtime import log_to

log_to(snakemake.log[0])
train_group(GroupJob.from_job(snakemake))
