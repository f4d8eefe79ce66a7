from pathlib import Path

from snakemake.utils import min_version

from specrec.config import check_resource_rules, read_config_file

min_version("9.0")

# Snakemake's own loader reports a broken YAML file without naming it; read the default config first so that
# a syntax error in it names the file, the line and the column (`python -m specrec.config FILE...` checks
# the files given with --configfile, which Snakemake reads before this file runs)
if Path("config/config.yaml").exists():
    read_config_file("config/config.yaml")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


check_resource_rules(config, [rule.name for rule in workflow.rules])


# On a cluster the target rules run on the submitting machine (they do no work), and so do the rules marked
# `localrule: True`: downloads (compute nodes often have no internet) and the cheap tables and figures.
# `group:` in the rules sets which jobs share one allocation; profiles/slurm sets how many.
localrules:
    all,
    figures,
    tables,


rule all:
    default_target: True
    input:
        all_targets(),
