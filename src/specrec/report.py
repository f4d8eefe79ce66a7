"""The study on one page: every figure and table with its caption, in a self-contained HTML file
(results/overview.html, images embedded), and a headless-Chromium screenshot of it.

`snakemake --report` gives the same figures with provenance, one per click; this page is what a reader
scrolls through or mails around. Captions are the report's own (workflow/report/*.rst, Jinja templates over
the config), so both say the same thing about what was run.

Screenshot: `python -m specrec.report results/overview.html overview.png`.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from specrec import io
from specrec.outputs import TABLES, figure_titles
from specrec.runs import base_of
from specrec.tuning import configured_grids

PathLike = str | os.PathLike

# the captions are workflow/report/{stem}.rst, or (the headline) the {stem}.rst its job wrote beside it
FIGURES = figure_titles()

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1560px; padding: 16px 24px;
       color: #1d2327; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { font-size: 20px; margin: 28px 0 8px;
     border-bottom: 1px solid #ccd; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px; }
.wide { max-width: 1200px; }
.card { border: 1px solid #dde; border-radius: 6px; padding: 10px 12px; background: #fff; }
.card h3 { font-size: 16px; margin: 0 0 6px; } .card img { width: 100%; height: auto; }
.caption { font-size: 13px; color: #3c434a; } .caption p { margin: 4px 0; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 4px; }
th, td { border-bottom: 1px solid #e3e3ea; padding: 3px 7px; text-align: left; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; } dl.study { display: grid; grid-template-columns: max-content auto;
          gap: 2px 14px; } dl.study dt { font-weight: 600; } dl.study dd { margin: 0; }
"""


def render_caption(caption: PathLike, config: dict) -> str:
    """A report caption (reStructuredText with Jinja over `snakemake.config`) as an HTML fragment."""
    import jinja2
    from docutils.core import publish_parts

    text = jinja2.Template(Path(caption).read_text()).render(snakemake=SimpleNamespace(config=config))
    settings = {"report_level": 5, "halt_level": 5, "input_encoding": "unicode"}
    return publish_parts(text, writer="html5", settings_overrides=settings)["fragment"]


def _inline(cell: str) -> str:
    escaped = html.escape(cell.strip())
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)


def markdown_table_html(markdown: str) -> str:
    """Our Markdown tables (a header, an alignment row, body rows) as an HTML table; `---:` columns are
    right-aligned and **bold** cells stay bold."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in markdown.strip().splitlines()
    ]
    if len(rows) < 2:
        return "<p>(empty table)</p>"
    header, aligns, body = rows[0], rows[1], rows[2:]
    numeric = [align.strip().endswith(":") for align in aligns]

    def row(cells: Sequence[str], tag: str) -> str:
        parts = [
            f"<{tag}{' class=num' if num else ''}>{_inline(cell)}</{tag}>"
            for cell, num in zip(cells, numeric, strict=False)
        ]
        return "<tr>" + "".join(parts) + "</tr>"

    lines = [row(header, "th"), *(row(cells, "td") for cells in body)]
    return '<div class="scroll"><table>' + "\n".join(lines) + "</table></div>"


def study_summary(config: dict) -> str:
    """What was run, from the config: datasets, seeds, split, models and recipes, grids, training."""
    split = config["split"]
    split_text = f"{split['protocol']} {'/'.join(f'{f:g}' for f in split['fractions'])}"
    if split["protocol"] == "provided":
        share = split["valid_fraction"]
        split_text = f"the dataset's own split, {share:g} of each user's training items as validation"
    if split.get("seed") is not None:
        split_text += f"; one split, seed {split['seed']}"
    ran = {name for names in config["runs"].values() for name in names}
    ran |= {base_of(name) for name in ran}
    grids = {name: grid for name, grid in configured_grids(config).items() if name in ran}
    grid_text = "; ".join(
        f"{name}: " + ", ".join(f"{key} ∈ {{{', '.join(map(str, values))}}}" for key, values in grid.items())
        for name, grid in grids.items()
        if grid
    )
    train = config["train"]
    items = {
        "Datasets": ", ".join(config["datasets"]),
        "Seeds": ", ".join(map(str, config["seeds"])),
        "Split": split_text,
        "Runs": "; ".join(f"{model}: {', '.join(names)}" for model, names in config["runs"].items() if names),
        "Grids": grid_text or "none (every recipe as configured)",
        "Selection": f"best mean validation {config.get('tuning', {}).get('metric', 'ndcg@20')} over seeds",
        "Training": f"d = {train['dim']}, at most {train['epochs']} epochs, early stopping after "
        f"{train['patience']} epochs without a better validation NDCG@20",
    }
    rows = "".join(f"<dt>{key}</dt><dd>{html.escape(value)}</dd>" for key, value in items.items())
    return f'<dl class="study">{rows}</dl>'


STUDY = "The answer"  # the section of study-level figures (results/figures/*.png), shown first


def _figure_key(path: Path) -> tuple[str, str]:
    """(dataset, stem) of results/figures/{dataset}/{stem}.png; (STUDY, stem) of a study-level figure."""
    return (STUDY if path.parent.name == "figures" else path.parent.name), path.stem


def _figure_caption(path: Path, captions: Path, config: dict) -> str:
    """A caption its job computed beside the figure ({stem}.rst), else the report's template for it."""
    for caption in (path.with_suffix(".rst"), captions / f"{path.stem}.rst"):
        if caption.exists():
            return render_caption(caption, config)
    return ""


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.as_posix())}" src="data:image/png;base64,{data}">'


def build_overview(
    figures: Sequence[PathLike],
    tables: Sequence[PathLike],
    captions: PathLike,
    config: dict,
    out: PathLike,
    title: str = "specrec study",
) -> None:
    """Write the overview page: the study summary, every figure (PNG) per dataset in a fixed order, then
    every table (Markdown), each with its caption from `captions` (workflow/report)."""
    captions = Path(captions)
    order = {stem: i for i, stem in enumerate(FIGURES)}
    by_dataset: dict[str, list[Path]] = {}
    for path in sorted(map(Path, figures), key=lambda p: order.get(p.stem, len(order))):
        by_dataset.setdefault(_figure_key(path)[0], []).append(path)
    if STUDY in by_dataset:  # the answer comes first
        by_dataset = {STUDY: by_dataset.pop(STUDY)} | by_dataset
    sections = [f"<h1>{html.escape(title)}</h1>", study_summary(config)]
    for dataset, paths in by_dataset.items():
        cards = []
        for path in paths:
            text = _figure_caption(path, captions, config)
            name = FIGURES.get(path.stem, path.stem.replace("_", " "))
            anchor = re.sub(r"\W+", "-", dataset.lower())  # "The answer" -> the-answer
            cards.append(
                f'<div class="card" id="{anchor}-{path.stem}"><h3>{html.escape(name)}</h3>{_image(path)}'
                f'<div class="caption">{text}</div></div>'
            )
        heading = dataset if dataset == STUDY else f"Figures: {dataset}"
        grid = "wide" if dataset == STUDY else "grid"
        sections.append(f"<h2>{html.escape(heading)}</h2><div class={grid}>{''.join(cards)}</div>")
    given = {Path(t).stem: Path(t) for t in tables}
    for entry in TABLES:
        if entry.name in given:
            caption = render_caption(captions / f"{entry.caption}.rst", config)
            table = markdown_table_html(given[entry.name].read_text())
            sections.append(
                f'<h2 id="table-{entry.name}">{entry.title}</h2>{table}<div class="caption">{caption}</div>'
            )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n"
    )
    io.write_text(out, page)


def page_height(n_figures: int, n_table_rows: int, width: int) -> int:
    """A window tall enough for the whole page (Chromium's --screenshot captures the window only): two
    figure cards per row, each about (width / 2) * 0.75 high with its caption, plus the table rows."""
    card = int(width / 2 * 0.62) + 260
    return min(16000, 700 + math.ceil(n_figures / 2) * card + 40 * n_table_rows)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    return None


def screenshot(page: PathLike, png: PathLike, width: int = 1600, height: int | None = None) -> Path:
    """A PNG of an HTML page in headless Chromium (a full-page shot when `height` is None)."""
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found: install it (Debian: apt-get install chromium)")
    page = Path(page).resolve()
    if height is None:
        text = page.read_text()
        height = page_height(text.count('<div class="card"'), text.count("<tr>"), width)
    with tempfile.TemporaryDirectory() as profile:
        target = Path(profile) / "shot.png"
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", "--virtual-time-budget=10000",
            f"--screenshot={target}", page.as_uri(),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if result.returncode != 0 or not target.exists():
            raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
        io.write_bytes(png, target.read_bytes())
    return Path(png)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Screenshot an HTML page (the study overview) with Chromium."
    )
    parser.add_argument("page", help="HTML file, e.g. results/overview.html")
    parser.add_argument("png", help="PNG to write")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=None, help="window height (default: the whole page)")
    args = parser.parse_args(argv)
    print(screenshot(args.page, args.png, args.width, args.height))


if __name__ == "__main__":
    main()
