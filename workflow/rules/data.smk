rule download:
    output:
        manifest="results/data/{dataset}/raw/MANIFEST.json",
    log:
        "results/logs/download/{dataset}.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("download"),
    script:
        "../scripts/download.py"


rule prepare:
    input:
        manifest="results/data/{dataset}/raw/MANIFEST.json",
    output:
        interactions="results/data/{dataset}/interactions.parquet",
        user_map="results/data/{dataset}/users.parquet",
        item_meta="results/data/{dataset}/items.parquet",
        stats="results/data/{dataset}/stats.csv",
    log:
        "results/logs/prepare/{dataset}.log",
    group:
        "data"
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("prepare"),
    params:
        settings=prepare_params,
    script:
        "../scripts/prepare.py"


rule split:
    input:
        interactions="results/data/{dataset}/interactions.parquet",
        user_map="results/data/{dataset}/users.parquet",
        item_meta="results/data/{dataset}/items.parquet",
    output:
        train="results/data/{dataset}/split/seed{seed}/train.parquet",
        valid="results/data/{dataset}/split/seed{seed}/valid.parquet",
        test="results/data/{dataset}/split/seed{seed}/test.parquet",
        meta="results/data/{dataset}/split/seed{seed}/split.json",
        stats="results/data/{dataset}/split/seed{seed}/stats.csv",
    log:
        "results/logs/split/{dataset}_seed{seed}.log",
    group:
        "data"
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("split"),
    params:
        settings=split_params,
    script:
        "../scripts/split.py"
