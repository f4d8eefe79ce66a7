# Target rules: `snakemake figures` / `snakemake tables` (re)build only plots or tables from the result
# files; they never train. After changing plotting code: `rm -r results/figures && snakemake figures`.
rule figures:
    input:
        figure_files(),


rule tables:
    input:
        table_files(),


rule tuning:
    input:
        metrics=run_files("metrics.json"),
    output:
        **table_outputs("tuning"),
    log:
        "results/logs/tuning.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("tuning"),
    params:
        metric=config["tuning"]["metric"],
    script:
        "../scripts/tuning.py"


rule headline_figure:
    input:
        tuning=TUNING_TABLE,
        metrics=run_files("metrics.json"),
        spectra=run_files("spectrum.json"),
        epochs=run_files("epochs.csv"),
        template=REPORT_DIR / "headline.rst",
    output:
        pdf="results/figures/headline.pdf",
        png=report(
            "results/figures/headline.png",
            caption=str(HEADLINE_CAPTION),
            category=HEADLINE.category,
        ),
        caption="results/figures/headline.rst",
        json="results/figures/headline.json",
    log:
        "results/logs/headline_figure.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("headline_figure"),
    params:
        recipes=list(config["recipes"]) + ["none"],
        models=list(config["runs"]),
    script:
        "../scripts/headline.py"


# One job per figure and dataset, so that deleting or restyling a figure rebuilds only that figure; the
# figures, their inputs and their report categories are specrec.outputs.FIGURES.
for figure in FIGURES:

    rule:
        name:
            f"{figure.name}_figure"
        input:
            tuning=TUNING_TABLE,
            runs=lambda wc, reads=figure.reads: run_files(reads, wc.dataset),
        output:
            pdf=f"results/figures/{{dataset}}/{figure.name}.pdf",
            png=report(
                f"results/figures/{{dataset}}/{figure.name}.png",
                caption=f"../report/{figure.name}.rst",
                category=figure.category,
                subcategory="{dataset}",
            ),
        log:
            f"results/logs/{figure.name}_figure/{{dataset}}.log",
        localrule: True
        conda:
            "../../envs/specrec.yaml"
        resources:
            **rule_resources(f"{figure.name}_figure"),
        params:
            function=figure.function,
            recipes=list(config["recipes"]) + ["none"],
            models=list(config["runs"]),
        script:
            "../scripts/figure.py"


rule summary_tables:
    input:
        tuning=TUNING_TABLE,
        metrics=run_files("metrics.json"),
        spectra=run_files("spectrum.json"),
        diversity=run_files("diversity.json"),
        activity=run_files("activity.csv"),
        per_user=run_files("per_user.parquet"),
        stats=stats_files(),
        kg_stats=kg_stats_files(),
    output:
        **table_outputs("summary_tables"),
    log:
        "results/logs/tables.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("summary_tables"),
    params:
        baseline=config["report"]["baseline"],
        recalls=config["report"]["recalls"],
    script:
        "../scripts/tables.py"


rule convergence:
    input:
        tuning=TUNING_TABLE,
        epochs=run_files("epochs.csv"),
    output:
        **table_outputs("convergence"),
    log:
        "results/logs/convergence.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("convergence"),
    script:
        "../scripts/convergence.py"


rule index:
    input:
        tuning=TUNING_TABLE,
        metrics=run_files("metrics.json"),
        spectra=run_files("spectrum.json"),
        diversity=run_files("diversity.json"),
    output:
        index=report(
            "results/index.csv",
            caption="../report/index.rst",
            category="Tables",
        ),
    log:
        "results/logs/index.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("index"),
    script:
        "../scripts/index.py"


rule overview:
    input:
        figures=[f for f in figure_files() if f.endswith(".png")],
        tables=[f for f in table_files() if f.endswith(".md")],
        captions=caption_files(),
    output:
        "results/overview.html",
    log:
        "results/logs/overview.log",
    localrule: True
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("overview"),
    params:
        config=config,
    script:
        "../scripts/overview.py"
