"""The numbers of REPRODUCTION.md, collected from the result files of finished studies (never typed in).

    python -m specrec.reproduction REPRODUCTION.md --study default=../studies/default paper3=../studies/p3

rewrites every block of the document that reads

    <!-- numbers: KIND STUDY [ARGUMENTS] -->
    ...
    <!-- /numbers -->

from the named study's working directory (its results/runs/**/ files and results/tables/tuning.csv, read
with the loaders the tables use; tuned recipes at their setting chosen on validation). The prose and the
verdicts around the blocks are written by hand after reading the numbers. KINDs:

- `spectra STUDY`: per (model, recipe), test NDCG@20 and the spectrum of the reported tables and of the
  last epoch's (stable rank / d, effective rank / d), mean ± sd over seeds;
- `versus STUDY A B [C ...]`: recipe A against each of B, C, ...: NDCG@20, Recall@20 and stable rank / d
  with the relative change and a paired t-test over seeds;
- `warm_start STUDY`: every add-on run (`base+addon`) against its base: test NDCG@20, and epochs and
  seconds to 95 % of the best validation NDCG@20, with the relative change and a paired t-test;
- `semantic STUDY A B`: paper 1's measures of A against B (CTR, accuracy, diversity, cold start,
  uniformity, alignment);
- `correlation STUDY`: the headline figure's rank correlations (results/figures/headline.json).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from specrec import io
from specrec.runs import convergence_frame, epochs_frame, metrics_frame, reference_of, spectrum_frame
from specrec.tables import beyond_accuracy_frame
from specrec.tuning import apply_selection, read_selection

KEYS = ["dataset", "model", "recipe", "seed"]
BLOCK = re.compile(r"(<!-- numbers: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /numbers -->)", re.DOTALL)


@dataclass
class Study:
    """Everything a finished study left behind, one row per run (tuned cells at their chosen setting)."""

    root: Path
    runs: pd.DataFrame
    epochs: pd.DataFrame

    @classmethod
    def load(cls, root: str | Path) -> Study:
        root = Path(root)
        run_dirs = sorted(path.parent for path in root.glob("results/runs/*/*/*/seed*/metrics.json"))
        if not run_dirs:
            raise FileNotFoundError(f"{root}: no results/runs/*/*/*/seed*/metrics.json (run the study first)")
        tuning = root / "results" / "tables" / "tuning.csv"
        selection = read_selection(tuning) if tuning.exists() else None

        def files(name: str) -> list[Path]:
            return [run / name for run in run_dirs]

        metrics = metrics_frame(files("metrics.json"))
        spectra = spectrum_frame(files("spectrum.json"))
        spectra = spectra[[c for c in spectra.columns if not c.endswith("singular_values")]]
        beyond = beyond_accuracy_frame(files("metrics.json"), files("diversity.json"), files("activity.csv"))
        beyond = beyond.drop(columns=["recall@20", "ndcg@20"])
        runs = metrics.merge(spectra, on=KEYS, suffixes=("", "_spectrum")).merge(beyond, on=KEYS)
        for measure in ("stable_rank", "effective_rank"):
            for side in ("user", "item"):
                runs[f"{side}_{measure}_d"] = runs[f"{side}_{measure}"] / runs["dim"]
        epochs = epochs_frame(files("epochs.csv"))
        last = epochs.sort_values("epoch").groupby(KEYS).tail(1)
        last = last[[*KEYS, "user_stable_rank", "item_stable_rank"]].rename(
            columns=lambda c: f"last_{c}" if c.endswith("stable_rank") else c
        )
        runs = runs.merge(last, on=KEYS)
        for side in ("user", "item"):
            runs[f"last_{side}_stable_rank_d"] = runs[f"last_{side}_stable_rank"] / runs["dim"]
        return cls(root, apply_selection(runs, selection), apply_selection(epochs, selection))

    def of(self, recipe: str) -> pd.DataFrame:
        runs = self.runs[self.runs["recipe"] == recipe]
        if runs.empty:
            raise ValueError(
                f"{self.root}: no run of recipe {recipe!r}; there are {sorted(set(self.runs.recipe))}"
            )
        return runs


def mean_sd(values: pd.Series, digits: int = 4) -> str:
    """'mean ± sd' over seeds (sample sd), or the value alone for one seed."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def paired(ours: pd.DataFrame, theirs: pd.DataFrame, column: str, digits: int = 4) -> dict:
    """Two recipes' `column` paired by (dataset, model, seed): means, relative change, paired t-test."""
    from scipy import stats

    on = ["dataset", "model", "seed"]
    both = ours[[*on, column]].merge(theirs[[*on, column]], on=on, suffixes=("", "_ref")).dropna()
    a, b = both[column].astype(float), both[f"{column}_ref"].astype(float)
    p = stats.ttest_rel(a, b).pvalue if len(both) > 1 and (a != b).any() else math.nan
    # relative to the reference's size, so that the sign is the direction of the value itself (a more
    # negative uniformity is a negative change)
    change = (a.mean() - b.mean()) / abs(b.mean()) if len(both) and b.mean() != 0 else math.nan
    found = {"ours": mean_sd(a, digits), "theirs": mean_sd(b, digits), "change": change, "p": p}
    return found | {"n": len(both)}


def _pct(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{100 * value:+.1f} %"


def _p(value: float) -> str:
    return "–" if not math.isfinite(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cells(study: Study) -> list[tuple[str, str, pd.DataFrame]]:
    return [
        (model, recipe, runs) for (model, recipe), runs in study.runs.groupby(["model", "recipe"], sort=False)
    ]


def spectra_block(study: Study) -> str:
    rows = []
    for model, recipe, runs in sorted(_cells(study), key=lambda cell: (cell[0], cell[1])):
        if (runs["dim"] <= 1).all():
            continue
        rows.append(
            {
                "model": model,
                "recipe": recipe,
                "seeds": runs["seed"].nunique(),
                "test NDCG@20": mean_sd(runs["test_ndcg@20"]),
                "best epoch": mean_sd(runs["best_epoch"], 1),
                "SR/d user (reported)": mean_sd(runs["user_stable_rank_d"], 3),
                "SR/d item (reported)": mean_sd(runs["item_stable_rank_d"], 3),
                "SR/d user (last epoch)": mean_sd(runs["last_user_stable_rank_d"], 3),
                "SR/d item (last epoch)": mean_sd(runs["last_item_stable_rank_d"], 3),
                "eff. rank/d user": mean_sd(runs["user_effective_rank_d"], 3),
                "eff. rank/d item": mean_sd(runs["item_effective_rank_d"], 3),
            }
        )
    return markdown(rows)


def compare(ours: pd.DataFrame, theirs: pd.DataFrame, measures: dict[str, str], **identity) -> list[dict]:
    """One row per measure present: both recipes' mean ± sd, the relative change, the paired t-test."""
    rows = []
    for column, label in measures.items():
        if column not in ours:
            continue
        found = paired(ours, theirs, column, digits=1 if column.endswith(("_to_95", "seconds")) else 4)
        rows.append(
            identity
            | {
                "measure": label,
                "value": found["ours"],
                "reference": found["theirs"],
                "change": _pct(found["change"]),
                "paired t p": _p(found["p"]),
                "seeds": found["n"],
            }  # fmt: skip
        )
    return rows


VERSUS = {"test_ndcg@20": "NDCG@20", "test_recall@20": "Recall@20", "user_stable_rank_d": "SR/d user",
          "item_stable_rank_d": "SR/d item", "train_seconds": "training seconds"}  # fmt: skip


def versus_block(study: Study, ours: str, *references: str) -> str:
    rows = []
    for reference in references:
        rows += compare(study.of(ours), study.of(reference), VERSUS, recipe=ours, against=reference)
    return markdown(rows)


WARM_START = {
    "test_ndcg@20": "test NDCG@20",
    "epochs_to_95": "epochs to 95 %",
    "seconds_to_95": "seconds to 95 %",
    "best_valid_ndcg@20": "best valid NDCG@20",
}


def warm_start_block(study: Study) -> str:
    convergence = convergence_frame(study.epochs)
    runs = study.runs.merge(convergence.drop(columns=["best_epoch"]), on=KEYS)
    rows = []
    for recipe in sorted(set(runs["recipe"])):
        base = reference_of(recipe)
        if base is None or base not in set(runs["recipe"]):
            continue
        ours, theirs = runs[runs["recipe"] == recipe], runs[runs["recipe"] == base]
        rows += compare(ours, theirs, WARM_START, run=recipe, base=base)
    return markdown(rows)


SEMANTIC = {
    "auc": "AUC (whole set)", "auc_batched": "AUC (KGCN batches)", "f1_batched": "F1 (KGCN batches)",
    "test_recall@20": "Recall@20", "test_ndcg@20": "NDCG@20", "test_ndcg@100": "NDCG@100",
    "ild_genre": "ILD genre@20", "ild_text": "ILD synopsis@20", "inter_list": "inter-list@20",
    "coverage": "coverage@20", "cold_ndcg@20": "cold-start NDCG@20",
    "item_uniformity": "item uniformity (lower: more uniform)",
    "alignment": "alignment (lower: closer positives)",
}  # fmt: skip


def semantic_block(study: Study, ours: str, reference: str) -> str:
    return markdown(compare(study.of(ours), study.of(reference), SEMANTIC, recipe=ours, against=reference))


def correlation_block(study: Study) -> str:
    found = io.read_json(study.root / "results" / "figures" / "headline.json")["datasets"]
    rows = []
    for entry in found:
        for measure, result in entry["correlations"].items():
            rows.append(
                {
                    "dataset": entry["dataset"],
                    "balance": measure.replace("_", " ") + " / d",
                    "Spearman ρ": "–" if result["rho"] is None else f"{result['rho']:+.2f}",
                    "p": _p(result["p"] if result["p"] is not None else math.nan),
                    "cells": result["n"],
                }  # fmt: skip
            )
    return markdown(rows)


KINDS: dict[str, Callable[..., str]] = {
    "spectra": spectra_block,
    "versus": versus_block,
    "warm_start": warm_start_block,
    "semantic": semantic_block,
    "correlation": correlation_block,
}


def fill(document: str, studies: dict[str, Path]) -> str:
    """The document with every block whose study is given rewritten from that study's results."""
    loaded: dict[str, Study] = {}

    def replace(match: re.Match) -> str:
        kind, name, *arguments = match["spec"].split()
        if kind not in KINDS:
            raise ValueError(f"unknown block kind {kind!r}; valid: {', '.join(KINDS)}")
        if name not in studies:
            return match.group(0)
        if name not in loaded:
            loaded[name] = Study.load(studies[name])
        return match.group(1) + KINDS[kind](loaded[name], *arguments) + match.group(4)

    return BLOCK.sub(replace, document)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("document", type=Path, help="e.g. REPRODUCTION.md")
    parser.add_argument(
        "--study", nargs="+", default=[], metavar="NAME=DIR", help="a study's working directory"
    )
    args = parser.parse_args(argv)
    studies = dict(item.split("=", 1) for item in args.study)
    io.write_text(args.document, fill(args.document.read_text(), {k: Path(v) for k, v in studies.items()}))


if __name__ == "__main__":
    main()
