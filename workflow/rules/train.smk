rule train:
    input:
        train=split_file("train.parquet"),
        valid=split_file("valid.parquet"),
        test=split_file("test.parquet"),
        meta=split_file("split.json"),
        kg=kg_if_needed,
        item_meta="results/data/{dataset}/items.parquet",
        text=text_embeddings_if_enabled,
    output:
        # each run's files, as the rule run_files hands them out, then deleted
        group=temp(directory(GROUP_FOLDER)),
    log:
        "results/logs/train/{dataset}/{model}_{group}_seed{seed}.log",
    benchmark:
        "results/logs/train/{dataset}/{model}_{group}_seed{seed}.benchmark.tsv"
    group:
        "run"
    conda:
        "../../envs/specrec.yaml"
    threads: config["train"]["threads"]
    resources:
        **rule_resources("train"),
    params:
        # the group's runs and their recipes, resolved from the config: a change of one reruns the group
        members=group_recipes,
        # what results depend on: a change of threads, stacking or compiling trains nothing again
        settings=run_settings(config["train"]),
        model_options=model_options,
        ks=config["train"]["ks"],
    script:
        "../scripts/train.py"


rule run_files:
    input:
        group=group_folder,
    output:
        **{Path(name).stem: run_file(name) for name in RUN_FILES},
    log:
        "results/logs/run_files/{dataset}/{model}_{recipe}_seed{seed}.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    params:
        # the run's recipe: a change of it trains its group again
        recipe=lambda wildcards: resolve(config, wildcards.recipe, wildcards.model),
        failed=FAILED,
    # a hard link (a copy where the file system has none), touched so that it is newer than the group's
    # folder; a run that failed in its group fails here with its error. A shell command: a `run:` block
    # would start a whole Snakemake process per run.
    shell:
        "folder={input.group:q}/{wildcards.recipe:q};"
        ' if [ -f "$folder/{params.failed}" ]; then cat "$folder/{params.failed}" | tee {log:q} >&2; exit 1; fi;'
        " for file in {output:q}; do"
        ' ln -f "$folder/$(basename "$file")" "$file" || cp "$folder/$(basename "$file")" "$file";'
        ' touch "$file"; done > {log:q} 2>&1'
