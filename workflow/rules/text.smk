rule encode_text:
    input:
        item_meta="results/data/{dataset}/items.parquet",
    output:
        embeddings="results/data/{dataset}/text/{slug}.npy",
        manifest="results/data/{dataset}/text/{slug}.json",
    log:
        "results/logs/encode_text/{dataset}_{slug}.log",
    conda:
        "../../envs/specrec.yaml"
    threads: config["text"]["threads"]
    resources:
        gpu=1,
    params:
        model=config["text"]["model"],
        batch_size=config["text"]["batch_size"],
        device=config["text"]["device"],
    script:
        "../scripts/encode_text.py"
