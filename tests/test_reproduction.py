"""REPRODUCTION.md's numbers are filled from result files: every block kind against a hand computation."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from specrec import io
from specrec.reproduction import fill, main
from test_plots_tables import write_run


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """ml-toy on MF: bpr and bpr+sr_warm over three seeds, and a popularity run."""
    for seed in (0, 1, 2):
        write_run(tmp_path, "ml-toy", "mf", "bpr", seed, ndcg=0.10 + 0.01 * seed, decay=0.5)
        write_run(tmp_path, "ml-toy", "mf", "bpr+sr_warm", seed, ndcg=0.12 + 0.02 * seed, decay=0.2)
    write_run(tmp_path, "ml-toy", "popularity", "none", 0, ndcg=0.05, decay=0.0)
    return tmp_path


def rows_of(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")][2:]  # after the header rows
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_versus_block_pairs_seeds_and_tests_them(study):
    document = "Before.\n<!-- numbers: versus toy bpr+sr_warm bpr -->\nstale\n<!-- /numbers -->\nAfter.\n"
    filled = fill(document, {"toy": study})
    assert filled.startswith("Before.\n") and filled.endswith("<!-- /numbers -->\nAfter.\n")
    assert "stale" not in filled
    ndcg = rows_of(filled.split("-->\n")[1].split("<!--")[0])[0]  # the first measure is NDCG@20
    ours = 4 * (0.12 + 0.02 * np.arange(3))  # the fixture's test NDCG@20 is 4 x its `ndcg`
    theirs = 4 * (0.10 + 0.01 * np.arange(3))
    assert ndcg[:3] == ["bpr+sr_warm", "bpr", "NDCG@20"]
    assert ndcg[3] == f"{ours.mean():.4f} ± {ours.std(ddof=1):.4f}"
    assert ndcg[5] == f"{100 * (ours.mean() / theirs.mean() - 1):+.1f} %"
    assert ndcg[6] == f"{stats.ttest_rel(ours, theirs).pvalue:.3f}" and ndcg[7] == "3"


def test_blocks_of_a_study_not_given_stay_and_unknown_kinds_are_errors(study):
    document = "<!-- numbers: spectra other -->\nkept\n<!-- /numbers -->\n"
    assert fill(document, {"toy": study}) == document
    with pytest.raises(ValueError, match="unknown block kind 'spectrum'"):
        fill("<!-- numbers: spectrum toy -->\n<!-- /numbers -->\n", {"toy": study})


def test_spectra_and_warm_start_blocks(study, tmp_path):
    document = tmp_path / "doc.md"
    blocks = ["<!-- numbers: spectra toy -->", "<!-- numbers: warm_start toy -->"]
    document.write_text("".join(f"{block}\n<!-- /numbers -->\n" for block in blocks))
    main([str(document), "--study", f"toy={study}"])
    spectra, warm = document.read_text().split("<!-- numbers: warm_start toy -->")
    cells = {row[1]: row for row in rows_of(spectra.split("-->\n", 1)[1])}
    assert set(cells) == {"bpr", "bpr+sr_warm"}  # popularity has no spectrum
    spectra = [io.read_json(study / f"results/runs/ml-toy/mf/bpr/seed{s}/spectrum.json") for s in (0, 1, 2)]
    reported = np.array([spectrum["user"]["stable_rank"] / spectrum["dim"] for spectrum in spectra])
    assert cells["bpr"][5] == f"{reported.mean():.3f} ± {reported.std(ddof=1):.3f}"
    warm_rows = rows_of(warm.strip().split("<!--")[0])
    measures = ["test NDCG@20", "epochs to 95 %", "seconds to 95 %", "best valid NDCG@20"]
    assert [row[2] for row in warm_rows] == measures
    assert all(row[:2] == ["bpr+sr_warm", "bpr"] for row in warm_rows)


def test_a_study_without_runs_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results/runs"):
        fill("<!-- numbers: spectra toy -->\n<!-- /numbers -->\n", {"toy": tmp_path})


def test_semantic_and_correlation_blocks(study):
    found = {"dataset": "ml-toy", "correlations": {"stable_rank": {"rho": 0.5, "p": 0.04, "n": 6}}}
    io.write_json(study / "results/figures/headline.json", {"datasets": [found]})
    document = (
        "<!-- numbers: semantic toy bpr+sr_warm bpr -->\n<!-- /numbers -->\n"
        "<!-- numbers: correlation toy -->\n<!-- /numbers -->\n"
    )
    semantic, correlation = fill(document, {"toy": study}).split("<!-- numbers: correlation toy -->")
    auc = {row[2]: row for row in rows_of(semantic)}["AUC (whole set)"]
    ours, theirs = 0.5 + 0.12 + 0.02 * np.arange(3), 0.5 + 0.10 + 0.01 * np.arange(3)
    shown = [f"{values.mean():.4f} ± {values.std(ddof=1):.4f}" for values in (ours, theirs)]
    assert auc[3:5] == shown
    assert rows_of(correlation) == [["ml-toy", "stable rank / d", "+0.50", "0.040", "6"]]


def test_the_change_has_the_sign_of_the_values_direction_also_below_zero():
    """A uniformity of -3.3 against -3.1 is more uniform: the change is negative (-6.5 %), not +6.5 %."""
    import pandas as pd

    from specrec.reproduction import paired

    on = {"dataset": ["d"] * 3, "model": ["m"] * 3, "seed": [0, 1, 2]}
    ours = pd.DataFrame(on | {"item_uniformity": [-3.2, -3.3, -3.4]})
    theirs = pd.DataFrame(on | {"item_uniformity": [-3.0, -3.1, -3.2]})
    assert paired(ours, theirs, "item_uniformity")["change"] == pytest.approx(-0.2 / 3.1)
    assert paired(theirs, ours, "item_uniformity")["change"] == pytest.approx(0.2 / 3.3)
