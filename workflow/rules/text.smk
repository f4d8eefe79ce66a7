from specrec.data.sources import get_source


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
        **rule_resources("encode_text"),
    params:
        model=config["text"]["model"],
        batch_size=config["text"]["batch_size"],
        device=config["text"]["device"],
    script:
        "../scripts/encode_text.py"


rule download_kg:
    output:
        manifest="results/data/{dataset}/kg/raw/MANIFEST.json",
    log:
        "results/logs/download_kg/{dataset}.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("download_kg"),
    script:
        "../scripts/download_kg.py"


rule build_kg:
    input:
        item_meta="results/data/{dataset}/items.parquet",
        # the downloaded Satori KG, for the datasets that publish one (ml-20m, book-crossing)
        kg_manifest=lambda w: (
            f"results/data/{w.dataset}/kg/raw/MANIFEST.json"
            if get_source(w.dataset).kg
            else []
        ),
    output:
        triples="results/data/{dataset}/kg/triples.parquet",
        entities="results/data/{dataset}/kg/entities.parquet",
        relations="results/data/{dataset}/kg/relations.parquet",
        stats="results/data/{dataset}/kg/stats.csv",
    log:
        "results/logs/build_kg/{dataset}.log",
    group:
        "data"
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("build_kg"),
    params:
        relations=config["kg"]["relations"],
    script:
        "../scripts/build_kg.py"
