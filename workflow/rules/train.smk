rule train:
    input:
        train="results/data/{dataset}/split/seed{seed}/train.parquet",
        valid="results/data/{dataset}/split/seed{seed}/valid.parquet",
        test="results/data/{dataset}/split/seed{seed}/test.parquet",
        meta="results/data/{dataset}/split/seed{seed}/split.json",
    output:
        epochs="results/runs/{dataset}/{model}/{recipe}/seed{seed}/epochs.csv",
        metrics="results/runs/{dataset}/{model}/{recipe}/seed{seed}/metrics.json",
        embeddings="results/runs/{dataset}/{model}/{recipe}/seed{seed}/embeddings.npz",
    log:
        "results/logs/train/{dataset}/{model}_{recipe}_seed{seed}.log",
    conda:
        "../../envs/specrec.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
    params:
        recipe=recipe_of,
        settings=config["train"],
        model_options=model_options,
        checkpoint_dir="results/checkpoints/{dataset}/{model}/{recipe}/seed{seed}",
    script:
        "../scripts/train.py"


rule spectrum:
    input:
        embeddings="results/runs/{dataset}/{model}/{recipe}/seed{seed}/embeddings.npz",
        test="results/data/{dataset}/split/seed{seed}/test.parquet",
    output:
        spectrum="results/runs/{dataset}/{model}/{recipe}/seed{seed}/spectrum.json",
    log:
        "results/logs/spectrum/{dataset}/{model}_{recipe}_seed{seed}.log",
    conda:
        "../../envs/specrec.yaml"
    script:
        "../scripts/spectrum.py"
