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
        epochs=run_file("epochs.csv"),
        metrics=run_file("metrics.json"),
        embeddings=run_file("embeddings.npz"),
        per_user=run_file("per_user.parquet"),
        top_lists=run_file("top_lists.npz"),
    log:
        "results/logs/train/{dataset}/{model}_{recipe}_seed{seed}.log",
    benchmark:
        "results/logs/train/{dataset}/{model}_{recipe}_seed{seed}.benchmark.tsv"
    group:
        "run"
    conda:
        "../../envs/specrec.yaml"
    threads: config["train"]["threads"]
    resources:
        **rule_resources("train"),
    params:
        # the run's recipe, resolved from the config: a change of it reruns the run
        recipe=lambda wildcards: resolve(config, wildcards.recipe, wildcards.model),
        settings=config["train"],
        model_options=model_options,
        checkpoint_dir=CHECKPOINT_FOLDER,
    script:
        "../scripts/train.py"


rule spectrum:
    input:
        embeddings=run_file("embeddings.npz"),
        test=split_file("test.parquet"),
    output:
        spectrum=run_file("spectrum.json"),
    log:
        "results/logs/spectrum/{dataset}/{model}_{recipe}_seed{seed}.log",
    benchmark:
        "results/logs/spectrum/{dataset}/{model}_{recipe}_seed{seed}.benchmark.tsv"
    group:
        "run"
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("spectrum"),
    script:
        "../scripts/spectrum.py"


rule diversity:
    input:
        top_lists=run_file("top_lists.npz"),
        per_user=run_file("per_user.parquet"),
        item_meta="results/data/{dataset}/items.parquet",
        train=split_file("train.parquet"),
        text=text_embeddings_if_enabled,
    output:
        diversity=run_file("diversity.json"),
        activity=run_file("activity.csv"),
    log:
        "results/logs/diversity/{dataset}/{model}_{recipe}_seed{seed}.log",
    benchmark:
        "results/logs/diversity/{dataset}/{model}_{recipe}_seed{seed}.benchmark.tsv"
    group:
        "run"
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("diversity"),
    params:
        ks=config["train"]["ks"],
    script:
        "../scripts/diversity.py"
