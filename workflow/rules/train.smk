rule train:
    input:
        train=split_file("train.parquet"),
        valid=split_file("valid.parquet"),
        test=split_file("test.parquet"),
        meta=split_file("split.json"),
        kg=kg_if_needed,
        item_meta=item_meta_if_needed,
        text=text_if_needed,
    output:
        epochs="results/runs/{dataset}/{model}/{recipe}/seed{seed}/epochs.csv",
        metrics="results/runs/{dataset}/{model}/{recipe}/seed{seed}/metrics.json",
        embeddings="results/runs/{dataset}/{model}/{recipe}/seed{seed}/embeddings.npz",
        per_user="results/runs/{dataset}/{model}/{recipe}/seed{seed}/per_user.parquet",
        top_lists="results/runs/{dataset}/{model}/{recipe}/seed{seed}/top_lists.npz",
    log:
        "results/logs/train/{dataset}/{model}_{recipe}_seed{seed}.log",
    conda:
        "../../envs/specrec.yaml"
    threads: config["train"]["threads"]
    resources:
        **rule_resources("train"),
    params:
        recipe=resolved_recipe,
        settings=config["train"],
        model_options=model_options,
        checkpoint_dir="results/checkpoints/{dataset}/{model}/{recipe}/seed{seed}",
    script:
        "../scripts/train.py"


rule spectrum:
    input:
        embeddings="results/runs/{dataset}/{model}/{recipe}/seed{seed}/embeddings.npz",
        test=split_file("test.parquet"),
    output:
        spectrum="results/runs/{dataset}/{model}/{recipe}/seed{seed}/spectrum.json",
    log:
        "results/logs/spectrum/{dataset}/{model}_{recipe}_seed{seed}.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("spectrum"),
    script:
        "../scripts/spectrum.py"


rule diversity:
    input:
        top_lists="results/runs/{dataset}/{model}/{recipe}/seed{seed}/top_lists.npz",
        per_user="results/runs/{dataset}/{model}/{recipe}/seed{seed}/per_user.parquet",
        item_meta="results/data/{dataset}/items.parquet",
        train=split_file("train.parquet"),
        text=text_embeddings_if_enabled,
    output:
        diversity="results/runs/{dataset}/{model}/{recipe}/seed{seed}/diversity.json",
        activity="results/runs/{dataset}/{model}/{recipe}/seed{seed}/activity.csv",
    log:
        "results/logs/diversity/{dataset}/{model}_{recipe}_seed{seed}.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("diversity"),
    params:
        ks=config["train"]["ks"],
    script:
        "../scripts/diversity.py"
