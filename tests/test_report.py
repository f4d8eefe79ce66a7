"""The overview page: captions rendered from the report's templates, Markdown tables, every figure embedded,
and a Chromium screenshot that shows them (skipped where Chromium is not installed)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from specrec import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ROOT / "workflow" / "report"


@pytest.fixture
def config() -> dict:
    from snakemake.utils import validate

    with open(ROOT / "config" / "config.yaml") as handle:
        config = yaml.safe_load(handle)
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))  # fills in the defaults
    return config


def test_captions_render_the_config_and_keep_metric_names_plain(config):
    config["seeds"] = [7, 8]
    text = html.unescape(report.render_caption(CAPTIONS / "results.rst", config))
    assert "seeds 7, 8" in text and "NDCG@20" in text
    assert "mailto" not in text  # NDCG@20 is not an e-mail address


def test_every_caption_renders_without_docutils_warnings(config):
    for caption in sorted(CAPTIONS.glob("*.rst")):
        text = report.render_caption(caption, config)
        assert text.strip() and "System Message" not in text and "mailto" not in text, caption.name


def test_markdown_tables_become_html_with_alignment_and_bold():
    markdown = "| Recipe | NDCG@20 |\n|---|---:|\n| bpr | **0.2500** |\n| ssm | 0.2400 |\n"
    table = report.markdown_table_html(markdown)
    assert table.count("<tr>") == 3
    assert "<td class=num><strong>0.2500</strong></td>" in table and "<td>ssm</td>" in table
    assert "<th class=num>NDCG@20</th>" in table


def write_png(path: Path, colour: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.arange(10), np.arange(10) ** 2, color=colour, lw=4)
    fig.savefig(path)
    plt.close(fig)
    return path


def overview(tmp_path: Path, config: dict) -> tuple[Path, list[Path]]:
    figures = [
        write_png(tmp_path / "figures" / "ml-1m" / "spectrum.png", "tab:blue"),
        write_png(tmp_path / "figures" / "ml-1m" / "validation.png", "tab:red"),
        write_png(tmp_path / "figures" / "gowalla" / "spectrum.png", "tab:green"),
    ]
    table = tmp_path / "tables" / "results.md"
    table.parent.mkdir()
    table.write_text("| Dataset | NDCG@20 |\n|---|---:|\n| ml-1m | **0.25** |\n")
    out = tmp_path / "overview.html"
    report.build_overview(figures, [table], CAPTIONS, config, out)
    return out, figures


def test_overview_embeds_every_figure_with_its_caption_and_the_tables(tmp_path, config):
    out, figures = overview(tmp_path, config)
    page = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert sorted(base64.b64decode(image) for image in images) == sorted(f.read_bytes() for f in figures)
    assert page.count('<div class="card"') == 3 and "Figures: ml-1m" in page and "Figures: gowalla" in page
    assert "Singular-value spectrum of the final user" in page  # the spectrum caption
    assert "<strong>0.25</strong>" in page and "Main results" in page
    assert "<dt>Datasets</dt><dd>ml-1m</dd>" in page  # what was run, from the config


@pytest.mark.skipif(
    report.find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)"
)
def test_screenshot_of_the_overview_shows_the_figures(tmp_path, config):
    from PIL import Image

    out, _ = overview(tmp_path, config)
    png = report.screenshot(out, tmp_path / "shot.png", width=1200)
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert image.shape[1] == 1200 and image.shape[0] >= 1200
    # the three figures' line colours are on screen (blue, red, green of matplotlib's tab10)
    for rgb in ((31, 119, 180), (214, 39, 40), (44, 160, 44)):
        close = (np.abs(image - np.array(rgb)).sum(axis=2) < 30).sum()
        assert close > 200, rgb


def test_the_headline_comes_first_with_the_caption_its_job_computed(tmp_path, config):
    figures = [
        write_png(tmp_path / "figures" / "ml-1m" / "spectrum.png", "tab:blue"),
        write_png(tmp_path / "figures" / "headline.png", "tab:red"),
    ]
    computed = "*What this study shows.* **ml-1m**: Spearman ρ = +0.83.\n\n"
    (tmp_path / "figures" / "headline.rst").write_text(computed + (CAPTIONS / "headline.rst").read_text())
    out = tmp_path / "overview.html"
    report.build_overview(figures, [], CAPTIONS, config, out)
    page = out.read_text()
    assert page.index("The answer") < page.index("Figures: ml-1m")
    assert page.index('id="the-answer-headline"') < page.index('id="ml-1m-spectrum"')
    assert "Spearman ρ = +0.83" in page and "seeds 2024" in page  # computed, then the template's Jinja


def test_every_figure_of_the_catalogue_has_its_function_caption_and_report_category():
    """The catalogue is the one list: rules, targets, overview and report take their figures from it."""
    import inspect

    from specrec import plots
    from specrec.outputs import FIGURES, HEADLINE, TABLES, figure_titles

    report_dir = Path(__file__).resolve().parents[1] / "workflow" / "report"
    for figure in FIGURES:
        files, pdf, png = list(inspect.signature(getattr(plots, figure.function)).parameters)[:3]
        assert (pdf, png) == ("pdf", "png"), figure.name  # plots.draw calls f(run files, pdf, png, ...)
        assert (report_dir / f"{figure.name}.rst").exists(), figure.name
        assert figure.applies in {"all", "trained", "speedup", "negatives", "sensitivity"}
    assert all((report_dir / f"{table.caption}.rst").exists() for table in TABLES)
    assert next(iter(figure_titles())) == HEADLINE.name  # the answer comes first
    assert len({f.name for f in FIGURES}) == len(FIGURES)


def test_a_table_rule_hands_its_script_every_file_it_declares(tmp_path):
    """The catalogue names each table's files and the rule that writes them; `table_paths` gives a table
    function exactly those three (the .tex is declared and passed, never derived)."""
    from specrec import tables
    from specrec.outputs import TABLE_FORMATS, TABLES, table_paths

    assert {table.written_by for table in TABLES} == {"summary_tables", "tuning", "convergence"}
    declared = {f"datasets_{ext}": tmp_path / f"d.{ext}" for ext in TABLE_FORMATS}
    paths = table_paths(declared, "datasets")
    assert paths == {f"{ext}_out": tmp_path / f"d.{ext}" for ext in TABLE_FORMATS}
    stats = tmp_path / "data" / "toy" / "split" / "seed0" / "stats.csv"
    stats.parent.mkdir(parents=True)
    stats.write_text("split,users,items,interactions,density\nall,2,3,4,0.67\ntrain,2,3,2,0.33\n")
    tables.dataset_table([stats], **paths)
    assert sorted(p.name for p in tmp_path.glob("d.*")) == ["d.csv", "d.md", "d.tex"]
    tables.dataset_table([stats], tmp_path / "e.csv", tmp_path / "e.md")  # no tex_out: no .tex
    assert not (tmp_path / "e.tex").exists()
