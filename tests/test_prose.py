"""Numbers in the chapters' prose come from the records (:mod:`tme_lib.prose`): every quoted
value matches what the notebook's cells put when the book was executed, and no result is typed
by hand outside a quote."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from tme_lib import prose

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))

# What looks like a result: a percentage, a ±, a time, an entropy, a difference in points, a
# ratio, an interval, or a number with two or more decimals.
RESULT = re.compile(
    r"(?<![\w.])[−+-]?\d+(?:\.\d+)?\s?(?:%|±|×|(?:s|seconds?|min|minutes?|h|hours?|nats?|"
    r"bits?|points?|times)\b)|\[[−+-]?\d+\.\d+, [−+-]?\d+\.\d+\]|(?<![\w.])\d+\.\d{2,}"
)
# Not results: the course's settings, and numbers quoted from the literature or from the two
# documents the course is built from, each said to be theirs in its sentence.
ALLOWED = {
    "00_data_and_training": {"5 times": "the vocabulary's minimum count, a setting"},
    "01_tme9_global_attention": {
        "95 %": "the confidence level",
        "66 %": "the report's collapsed run",
        "96.5 %": "the report's LSTM, training accuracy",
        "83.0 %": "the report's LSTM, test accuracy",
        "88.89 %": "published: Maas et al. 2011",
        "91.22 %": "published: Wang and Manning 2012",
        "6 nats": "log n for reviews of 200 to 400 tokens: arithmetic, not a run",
        "5 %": "the family-wise error rate, a setting",
    },
    "02_tme10_self_attention": {
        "95 %": "the confidence level",
        "10 %": "dropout rate, a setting",
        "80 %": "the report's description of its own curves",
        "30 %": "a setting of the planted corpus",
        "5 %": "the family-wise error rate, a setting",
    },
    "03_aptamers": {
        "95 %": "the confidence level",
        "15 minutes": "the seed design's line between cheap and costly runs",
        "30 ×": "the 30-mer's length, 30 × 30 pairs",
        "26 ×": "(30 − 4) unused embedding rows × 128: arithmetic on the source's architecture",
        "3 ×": "a 3 × 3 convolution, a setting",
        "1.65": "the source deck's label variance",
        "0.154": "the source deck's test MSE",
        "0.914": "the source deck's LSTM",
        "0.938": "the source deck's MLP",
        "5 ×": "the threshold of a partner-seeking head (PARTNER_THRESHOLD), a setting",
        "5 times": "the same threshold",
        "2 ×": "the threshold of a head that finds a planted feature, a setting",
    },
    "04_beyond_bag_of_words": {
        "95 %": "the confidence level",
        "91.22 %": "published: Wang and Manning 2012",
    },
    "05_pretraining": {
        "15 %": "the mask rate, a setting",
        "80 %": "the mask shares, a setting",
        "10 %": "the mask shares, a setting",
        "95 %": "the confidence level",
        "6 %": "the warm-up share of the schedule, a setting",
        "5 %": "the family-wise error rate, a setting",
    },
}


def markdown_cells(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def typed_results(markdown: str) -> list[str]:
    """The result-like numbers of ``markdown`` outside quotes, mathematics and code."""
    text = prose.SPAN.sub(" ", markdown)
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`|\]\([^)]*\)", " ", text, flags=re.S)
    return [re.sub(r"\s+", " ", m.group(0).strip()) for m in RESULT.finditer(text)]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_result_is_typed_in_the_prose(path):
    allowed = ALLOWED.get(path.stem, {})
    typed = [
        n
        for source in markdown_cells(path)
        for n in typed_results(source)
        if n not in allowed
    ]
    assert not typed, (
        f"{path.name}: numbers typed in the prose ({typed}); quote them from the records with "
        "prose.put in a code cell and a <span data-value=...> in the text (tme_lib/prose.py)"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_quote_shows_the_value_its_cells_put(path):
    nb = nbformat.read(path, as_version=4)
    values = nb.metadata.get(prose.METADATA, {})
    stale = [q for c in markdown_cells(path) for q in prose.unfilled(c, values)]
    assert not stale, f"{path.name}: (name, text, value) {stale}; run make full"
    source = jupytext.read(path.with_suffix(".py"))
    in_source = [
        q
        for c in source.cells
        if c.cell_type == "markdown"
        for q in prose.unfilled(c.source, values)
    ]
    assert not in_source, f"{path.with_suffix('.py').name}: {in_source}"


def test_the_detector_finds_typed_results_and_ignores_quotes_and_mathematics():
    text = (
        "It reaches 89.51 ± 0.09 %, 6.45 points above ([5.59, 7.32]) in 26 to 44 minutes, "
        "entropy 0.94 nats, MSE 0.094, 4.7 × uniform; "
        '<span data-value="a">90.69 %</span>, $\\log 400 = 5.99$ and `lr=1e-3` are fine.'
    )
    assert typed_results(text) == [
        "89.51 ±",
        "0.09 %",
        "6.45 points",
        "[5.59, 7.32]",
        "44 minutes",
        "0.94 nats",
        "0.094",
        "4.7 ×",
    ]


def test_fill_writes_values_and_names_a_quote_without_one():
    text = 'a <span data-value="acc">old</span> and <span data-value="t">1 s</span>'
    assert prose.fill(text, {"acc": "90.1 %", "t": "2 s"}) == (
        'a <span data-value="acc">90.1 %</span> and <span data-value="t">2 s</span>'
    )
    assert prose.unfilled(text, {"acc": "old", "t": "2 s"}) == [("t", "1 s", "2 s")]
    with pytest.raises(KeyError, match="t, which no cell puts"):
        prose.fill(text, {"acc": "x"})
    with pytest.raises(ValueError, match="one line"):
        prose.put(bad="two\nlines")
    prose.put(kept="90.69 % and 4.7 × uniform")  # a line never breaks before the unit
    assert prose.VALUES["kept"] == "90.69\u00a0% and 4.7\u00a0× uniform"


def test_the_execution_tool_fills_the_notebook_and_its_source(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from execute_notebooks import fill_prose

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell('reaches <span data-value="acc">?</span>'),
        nbformat.v4.new_code_cell("prose.put(acc='90 %')"),
    ]
    source = tmp_path / "chapter.py"
    source.write_text('# %% [markdown]\n# reaches <span data-value="acc">?</span>\n')
    fill_prose(nb, source, {"acc": "90 %"})
    assert nb.cells[0].source == 'reaches <span data-value="acc">90 %</span>'
    assert nb.metadata[prose.METADATA] == {"acc": "90 %"}
    assert '<span data-value="acc">90 %</span>' in source.read_text()
