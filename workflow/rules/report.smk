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
        csv=report(
            "results/tables/tuning.csv",
            caption="../report/tuning.rst",
            category="Tables",
        ),
        md="results/tables/tuning.md",
        tex="results/tables/tuning.tex",
    log:
        "results/logs/tuning.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("tuning"),
    params:
        metric=config["tune"]["metric"],
    script:
        "../scripts/tuning.py"


rule headline_figure:
    input:
        tuning="results/tables/tuning.csv",
        metrics=run_files("metrics.json"),
        spectra=run_files("spectrum.json"),
        epochs=run_files("epochs.csv"),
        template=REPORT_DIR / "headline.rst",
    output:
        pdf="results/figures/headline.pdf",
        png=report(
            "results/figures/headline.png",
            caption=str(HEADLINE_CAPTION),
            category="Answer",
        ),
        caption="results/figures/headline.rst",
        json="results/figures/headline.json",
    log:
        "results/logs/headline_figure.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("headline_figure"),
    params:
        recipes=list(config["recipes"]) + ["none"],
        models=list(config["runs"]),
    script:
        "../scripts/headline.py"


# One job per figure, so that deleting or restyling a figure rebuilds only that figure.
DATASET_FIGURES = {
    # figure: (plotting function of specrec.plots, the per-run file it reads, report category)
    "spectrum": ("plot_spectrum", "spectrum.json", "Spectrum"),
    "stable_rank": ("plot_stable_rank", "epochs.csv", "Training dynamics"),
    "validation": ("plot_validation_curve", "epochs.csv", "Training dynamics"),
    "alignment_uniformity": ("plot_alignment_uniformity", "spectrum.json", "Spectrum"),
    "activity": ("plot_activity", "activity.csv", "Beyond accuracy"),
    "diversity": ("plot_diversity", "diversity.json", "Beyond accuracy"),
}

for figure, (function, source, category) in DATASET_FIGURES.items():

    rule:
        name:
            f"{figure}_figure"
        input:
            tuning="results/tables/tuning.csv",
            runs=lambda wc, source=source: run_files(source, wc.dataset),
        output:
            pdf=f"results/figures/{{dataset}}/{figure}.pdf",
            png=report(
                f"results/figures/{{dataset}}/{figure}.png",
                caption=f"../report/{figure}.rst",
                category=category,
                subcategory="{dataset}",
            ),
        log:
            f"results/logs/{figure}_figure/{{dataset}}.log",
        conda:
            "../../envs/specrec.yaml"
        resources:
            **rule_resources(f"{figure}_figure"),
        params:
            function=function,
            recipes=list(config["recipes"]) + ["none"],
            models=list(config["runs"]),
        script:
            "../scripts/figure.py"


rule summary_tables:
    input:
        tuning="results/tables/tuning.csv",
        metrics=run_files("metrics.json"),
        spectra=run_files("spectrum.json"),
        diversity=run_files("diversity.json"),
        activity=run_files("activity.csv"),
        per_user=run_files("per_user.parquet"),
        stats=stats_files(),
        kg_stats=kg_stats_files(),
    output:
        results_csv=report(
            "results/tables/results.csv",
            caption="../report/results.rst",
            category="Tables",
        ),
        results_md="results/tables/results.md",
        results_tex="results/tables/results.tex",
        spectrum_csv=report(
            "results/tables/spectrum.csv",
            caption="../report/spectrum_table.rst",
            category="Tables",
        ),
        spectrum_md="results/tables/spectrum.md",
        spectrum_tex="results/tables/spectrum.tex",
        datasets_csv=report(
            "results/tables/datasets.csv",
            caption="../report/datasets.rst",
            category="Tables",
        ),
        datasets_md="results/tables/datasets.md",
        datasets_tex="results/tables/datasets.tex",
        beyond_accuracy_csv=report(
            "results/tables/beyond_accuracy.csv",
            caption="../report/beyond_accuracy.rst",
            category="Tables",
        ),
        beyond_accuracy_md="results/tables/beyond_accuracy.md",
        beyond_accuracy_tex="results/tables/beyond_accuracy.tex",
        significance_csv=report(
            "results/tables/significance.csv",
            caption="../report/significance.rst",
            category="Tables",
        ),
        significance_md="results/tables/significance.md",
        significance_tex="results/tables/significance.tex",
    log:
        "results/logs/tables.log",
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
        tuning="results/tables/tuning.csv",
        epochs=run_files("epochs.csv"),
    output:
        csv=report(
            "results/tables/convergence.csv",
            caption="../report/convergence.rst",
            category="Tables",
        ),
        md="results/tables/convergence.md",
        tex="results/tables/convergence.tex",
    log:
        "results/logs/convergence.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("convergence"),
    script:
        "../scripts/convergence.py"


rule index:
    input:
        tuning="results/tables/tuning.csv",
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
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("index"),
    script:
        "../scripts/index.py"


rule speedup_figure:
    input:
        tuning="results/tables/tuning.csv",
        runs=lambda wc: run_files("epochs.csv", wc.dataset),
    output:
        pdf="results/figures/{dataset}/speedup.pdf",
        png=report(
            "results/figures/{dataset}/speedup.png",
            caption="../report/speedup.rst",
            category="Training dynamics",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/speedup_figure/{dataset}.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("speedup_figure"),
    params:
        function="plot_convergence_speedup",
        recipes=list(config["recipes"]) + ["none"],
        models=list(config["runs"]),
    script:
        "../scripts/figure.py"


rule negatives_figure:
    input:
        tuning="results/tables/tuning.csv",
        metrics=lambda wc: run_files("metrics.json", wc.dataset),
    output:
        pdf="results/figures/{dataset}/negatives.pdf",
        png=report(
            "results/figures/{dataset}/negatives.png",
            caption="../report/negatives.rst",
            category="Results",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/negatives_figure/{dataset}.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("negatives_figure"),
    script:
        "../scripts/negatives_figure.py"


rule sensitivity_figure:
    input:
        metrics=lambda wc: run_files("metrics.json", wc.dataset),
    output:
        pdf="results/figures/{dataset}/sensitivity.pdf",
        png=report(
            "results/figures/{dataset}/sensitivity.png",
            caption="../report/sensitivity.rst",
            category="Results",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/sensitivity_figure/{dataset}.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("sensitivity_figure"),
    script:
        "../scripts/sensitivity_figure.py"


rule overview:
    input:
        figures=[f for f in figure_files() if f.endswith(".png")],
        tables=[f for f in table_files() if f.endswith(".md")],
        captions=caption_files(),
    output:
        "results/overview.html",
    log:
        "results/logs/overview.log",
    conda:
        "../../envs/specrec.yaml"
    resources:
        **rule_resources("overview"),
    params:
        config=config,
    script:
        "../scripts/overview.py"
