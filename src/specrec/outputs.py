"""The catalogue of a study's figures and tables, in the order the overview shows them.

The rules (workflow/rules/report.smk), the list of targets (common.smk), the overview page and the
Snakemake report all take their lists from here: adding a per-dataset figure is one entry below, one
plotting function in specrec.plots and one caption in workflow/report/{name}.rst.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """A per-dataset figure, results/figures/{dataset}/{name}.{pdf,png}, captioned by
    workflow/report/{name}.rst; drawn by `function` of specrec.plots from one kind of run file."""

    name: str
    title: str
    function: str
    reads: str  # the per-run file it is drawn from (all runs of the dataset)
    category: str  # the Snakemake report's category
    # the datasets it is drawn for: "all", "trained" (a trained run: popularity has no spectrum),
    # "speedup" (a base recipe beside its add-on runs), "negatives" (one loss at several numbers of
    # negatives), "sensitivity" (DirectSpec(+) at several alpha or tau)
    applies: str = "all"


TABLE_FORMATS = ("csv", "md", "tex")


@dataclass(frozen=True)
class Table:
    """results/tables/{name}.{csv,md,tex}, captioned by workflow/report/{caption}.rst, written by the rule
    `written_by` (which declares the three files as `{name}_csv`, `{name}_md`, `{name}_tex`)."""

    name: str
    title: str
    caption: str
    written_by: str = "summary_tables"
    applies: str = "all"  # or "trained": only where a trained run exists (convergence)

    def path(self, ext: str) -> str:
        return f"results/tables/{self.name}.{ext}"


def table_paths(output, name: str) -> dict[str, str]:
    """A rule's files of table `name` as the table functions of specrec.tables take them (`csv_out`,
    `md_out`, `tex_out`), from the job's named outputs."""
    return {f"{ext}_out": output[f"{name}_{ext}"] for ext in TABLE_FORMATS}


# the study's answer: drawn once for the whole study by its own rule, with a caption computed from the runs
HEADLINE = Figure(
    "headline", "Spectrum balance against accuracy", "headline", "metrics.json", "Answer", "trained"
)

FIGURES = (
    # name, title, plotting function, the run file it reads, report category, where it applies
    Figure("spectrum", "Singular-value spectra", "plot_spectrum", "spectrum.json", "Spectrum", "trained"),
    Figure("stable_rank", "Stable and effective rank per epoch", "plot_stable_rank", "epochs.csv",
           "Training dynamics", "trained"),
    Figure("validation", "Validation NDCG@20 per epoch", "plot_validation_curve", "epochs.csv",
           "Training dynamics"),
    Figure("speedup", "Warm-start speed-up", "plot_convergence_speedup", "epochs.csv", "Training dynamics",
           "speedup"),
    Figure("negatives", "Accuracy against the number of negatives", "plot_negatives", "metrics.json",
           "Results", "negatives"),
    Figure("sensitivity", "DirectSpec(+) sensitivity to α and τ", "plot_filter_sensitivity", "metrics.json",
           "Results", "sensitivity"),
    Figure("alignment_uniformity", "Alignment and uniformity", "plot_alignment_uniformity", "spectrum.json",
           "Spectrum", "trained"),
    Figure("activity", "NDCG@20 by user activity", "plot_activity", "activity.csv", "Beyond accuracy"),
    Figure("diversity", "Diversity of the top-20 lists", "plot_diversity", "diversity.json",
           "Beyond accuracy"),
)  # fmt: skip

TABLES = (
    Table("results", "Main results", "results"),
    Table("significance", "Add-ons against their base recipe", "significance"),
    Table("tuning", "Hyper-parameter selection on validation", "tuning", written_by="tuning"),
    Table("convergence", "Convergence", "convergence", written_by="convergence", applies="trained"),
    Table("spectrum", "Spectrum summaries", "spectrum_table"),
    Table("beyond_accuracy", "Beyond accuracy", "beyond_accuracy"),
    Table("datasets", "Datasets", "datasets"),
)


def figure_titles() -> dict[str, str]:
    """File stem -> title, the headline first (the overview's order)."""
    return {figure.name: figure.title for figure in (HEADLINE, *FIGURES)}
