"""The built book as readers see it, in headless Chromium driven by Playwright.

Run after ``make book`` (``make browser``); skipped when the book is not built or when
Chromium or Playwright is missing. Every page of the table of contents is opened at a phone
width (390 px) and a laptop width (1280 px).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "book" / "_build" / "html"
CHROMIUM = (
    os.environ.get("CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
playwright = pytest.importorskip("playwright.sync_api")
if not (HTML / "intro.html").exists():
    pytest.skip("the book is not built (make book)", allow_module_level=True)
if not CHROMIUM:
    pytest.skip(
        "no Chromium (Debian package 'chromium', or set CHROMIUM)",
        allow_module_level=True,
    )

PAGES = [
    "intro",
    "notebooks/00_data_and_training",
    "notebooks/01_tme9_global_attention",
    "notebooks/02_tme10_self_attention",
    "notebooks/03_aptamers",
    "notebooks/04_beyond_bag_of_words",
    "notebooks/05_pretraining",
    "results",
    "notation",
    "bibliography",
]
PHONE, LAPTOP = 390, 1280


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, name: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((HTML / f"{name}.html").as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    return page, requests


@pytest.mark.parametrize("name", PAGES)
def test_on_a_phone_the_menu_opens_the_chapter_list_and_nothing_scrolls_sideways(
    browser, name
):
    page, _ = open_page(browser, name, PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, (
        "sideways scroll"
    )
    page.locator(".primary-toggle:visible").first.click()
    page.wait_for_timeout(300)
    dialog = page.locator("#pst-primary-sidebar-modal")
    assert dialog.evaluate("d => d.open"), (
        "the menu button does not open the chapter list"
    )
    assert dialog.locator("a.reference", has_text="TME 10").first.is_visible()
    page.close()


@pytest.mark.parametrize("name", PAGES)
def test_on_a_laptop_the_sidebar_button_hides_the_sidebar(browser, name):
    page, _ = open_page(browser, name, LAPTOP)
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP
    sidebar = page.locator("#pst-primary-sidebar")
    page.locator(".primary-toggle:visible").first.click()
    page.wait_for_timeout(300)
    assert "pst-sidebar-hidden" in (sidebar.get_attribute("class") or "")
    page.close()


@pytest.mark.parametrize("name", PAGES)
def test_every_image_loads_and_no_request_leaves_the_machine(browser, name):
    page, requests = open_page(browser, name, LAPTOP)
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.src)"
    )
    assert broken == []
    outside = [u for u in requests if u.startswith(("http://", "https://"))]
    assert outside == [], f"{name} asks the network for {outside[:3]}"
    page.close()


@pytest.mark.parametrize("name", [p for p in PAGES if p.startswith("notebooks/")])
def test_solution_toggles_open_and_show_the_code(browser, name):
    page, _ = open_page(browser, name, LAPTOP)
    toggles = page.locator("details.hide summary", has_text="Show solution")
    assert toggles.count() > 0
    first = toggles.first
    first.click()
    page.wait_for_timeout(200)
    details = page.locator("details.hide").first
    assert details.evaluate("d => d.open") and "def " in details.inner_text()
    page.close()


# Known defects of the committed notebook outputs (issue "The book as readers see it"): they
# need the notebooks re-executed with narrower tables and one figure per captioned cell, which
# waits for the regenerated records. Strict: these tests fail as soon as the defect is gone,
# so that the marker is removed then.
KNOWN_WIDE: set[str] = set()
KNOWN_CAPTIONS: set[str] = set()


def _xfail_if(name, known, reason):
    return pytest.param(
        name, marks=pytest.mark.xfail(name in known, reason=reason, strict=True)
    )


@pytest.mark.parametrize(
    "name", [_xfail_if(p, KNOWN_WIDE, "tables wider than the column") for p in PAGES]
)
def test_on_a_laptop_no_table_or_output_is_wider_than_the_column(browser, name):
    page, _ = open_page(browser, name, LAPTOP)
    wide = page.evaluate("""() => {
      const column = document.querySelector('.bd-article').getBoundingClientRect().width;
      return Array.from(document.querySelectorAll('.bd-article table, .bd-article .output pre'))
        .filter(e => e.scrollWidth > column + 1).map(e => e.textContent.slice(0, 40));
    }""")
    assert wide == [], f"{name}: wider than the column: {wide[:3]}"
    page.close()


@pytest.mark.parametrize(
    "name",
    [
        _xfail_if(p, KNOWN_CAPTIONS, "captions on non-figure outputs")
        for p in PAGES
        if p.startswith("notebooks/")
    ],
)
def test_every_caption_sits_on_a_figure_alone(browser, name):
    page, _ = open_page(browser, name, LAPTOP)
    wrong = page.evaluate("""() => Array.from(document.querySelectorAll('figure'))
      .filter(f => f.querySelector('figcaption'))
      .filter(f => f.querySelectorAll('img').length !== 1
                || f.querySelector('table, .output_html, div.output.text_html, pre'))
      .map(f => f.querySelector('figcaption').textContent.slice(0, 50))""")
    assert wrong == [], f"{name}: captions on other outputs: {wrong[:3]}"
    page.close()


CHAPTERS = [p for p in PAGES if p.startswith("notebooks/")]


def test_figures_are_drawn_for_the_column_they_are_shown_in(browser):
    """``tme_lib.plots`` checks every figure against ``COLUMN_PX``: that must be the width a
    cell's output really has in the book at a laptop width."""
    from tme_lib.plots import COLUMN_PX

    page, _ = open_page(browser, "notebooks/01_tme9_global_attention", LAPTOP)
    # the width the images wider than the column are shrunk to
    widths = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_output img'))
      .filter(i => i.naturalWidth > i.getBoundingClientRect().width + 1)
      .map(i => i.getBoundingClientRect().width)""")
    assert widths and abs(max(widths) - COLUMN_PX) <= 2, (widths, COLUMN_PX)
    page.close()


@pytest.mark.parametrize("name", CHAPTERS)
def test_each_chapter_opens_in_colab_and_offers_its_student_notebook(browser, name):
    import json

    page, _ = open_page(browser, name, LAPTOP)
    links = page.evaluate(
        "() => Array.from(document.querySelectorAll('a')).map(a => a.href)"
    )
    colab = [u for u in links if "colab.research.google.com/github/" in u]
    stem = name.split("/")[-1]
    # the launch menu opens the student version, published with the book, then the solved one
    assert len(colab) == 2, colab
    assert colab[0].endswith(f"/blob/gh-pages/student/{stem}.ipynb"), colab
    assert colab[1].endswith(f"/blob/main/{name}.ipynb"), colab
    published = HTML / "student" / f"{stem}.ipynb"
    metadata = json.loads(published.read_text())["metadata"]
    assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"], metadata
    # the page's own download button gives the solved notebook (_sources/); the student one is
    # the chapter's download link
    student = [u for u in links if "/_downloads/" in u and u.endswith(f"/{stem}.ipynb")]
    assert student, f"{name}: no download of the student notebook"
    path = Path(student[0].removeprefix("file://"))
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    # the student version: stubs, not the solutions the page shows
    assert "NotImplementedError" in code and "# BEGIN SOLUTION" not in code
    page.close()


@pytest.fixture(scope="module")
def served():
    """The built book over HTTP (search summaries are fetched, which file:// forbids)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("query", ["softmax", "positional"])
def test_search_results_show_math_as_text_not_latex(browser, served, query):
    """Without book/_static/search_math.js, these searches show LaTeX such as "\\(n\\)"."""
    page = browser.new_page(viewport={"width": LAPTOP, "height": 900})
    page.goto(f"{served}/search.html?q={query}")
    page.wait_for_function(
        "document.querySelectorAll('#search-results p.context').length >= 3",
        timeout=20_000,
    )
    page.wait_for_timeout(500)
    summaries = page.evaluate("""() => Array.from(
      document.querySelectorAll('#search-results p.context')).map(p => p.textContent)""")
    latex = [s for s in summaries if any(m in s for m in ("\\(", "\\)", "\\[", "\\]"))]
    assert latex == [], latex[:2]
    page.close()


def search(browser, served, query: str) -> list[str]:
    """The visible results of a search of the built book: title and summary of each."""
    page = browser.new_page(viewport={"width": LAPTOP, "height": 900})
    page.goto(f"{served}/search.html?q={query}")
    page.wait_for_function(
        "document.querySelector('#search-results p.search-summary')", timeout=20_000
    )
    page.wait_for_timeout(1500)  # the summaries load one page after another
    shown = page.evaluate("""() => Array.from(
      document.querySelectorAll('#search-results li:not([hidden])')).map(li => li.textContent)""")
    page.close()
    return shown


def test_search_lists_pages_with_the_word_not_only_its_stem(browser, served):
    """Sphinx stems "positional" and "positive" alike: without the filter of
    book/_static/search_math.js, the pages that only say "positive" are listed too."""
    shown = search(browser, served, "positional")
    assert len(shown) >= 3
    assert all("position" in text.lower() for text in shown), shown


def test_search_summaries_do_not_start_with_the_download_menu(browser, served):
    shown = search(browser, served, "attention")
    assert len(shown) >= 5
    menu = [t for t in shown if re.search(r"(^|\s|\.\.\.)\.(md|pdf)(\s|$)", t)]
    assert menu == [], menu[:2]


@pytest.mark.parametrize("name", CHAPTERS)
def test_on_a_phone_a_tap_opens_a_figure_at_its_own_size(browser, name):
    """Shrunk to a phone's column a figure's text is small: a tap shows it at full size, in
    an overlay that scrolls; a second tap closes it."""
    page, _ = open_page(browser, name, PHONE)
    images = page.locator(".bd-article .cell_output img")
    assert images.count() > 0
    first = images.first
    first.scroll_into_view_if_needed()
    shown = first.evaluate("i => i.getBoundingClientRect().width / i.naturalWidth")
    first.click()
    page.wait_for_timeout(200)
    overlay = page.locator(".figure-lightbox")
    assert overlay.is_visible(), "a tap on a figure opens nothing"
    big = overlay.locator("img").evaluate(
        "i => i.getBoundingClientRect().width / i.naturalWidth"
    )
    assert shown < 0.9 and abs(big - 1.0) < 0.01, (shown, big)
    overlay.click(position={"x": 5, "y": 5})
    page.wait_for_timeout(100)
    assert not overlay.is_visible()
    page.close()


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_figure_says_what_it_shows_to_a_screen_reader(browser, name):
    page, _ = open_page(browser, name, LAPTOP)
    pairs = page.evaluate("""() => Array.from(document.querySelectorAll('figure'))
      .filter(f => f.querySelector('figcaption') && f.querySelector('img'))
      .map(f => [f.querySelector('img').alt, f.querySelector('figcaption').innerText])""")
    assert pairs
    for alt, caption in pairs:
        assert not alt.endswith((".png", ".svg")), alt
        assert " ".join(alt.split()) in " ".join(caption.split()), (alt, caption)
    page.close()


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
@pytest.mark.parametrize("name", [p for p in PAGES if p.startswith("notebooks/")])
def test_display_equations_fit_or_visibly_scroll(browser, name, width):
    """At a laptop width every display equation fits the column; at a phone width one that
    does not fit is marked as scrolling (a visible scroll bar and a shadow on its edge)."""
    page, _ = open_page(browser, name, width)
    page.wait_for_timeout(700)  # MathJax typesets after the load
    boxes = page.evaluate("""() => Array.from(
        document.querySelectorAll('.bd-article mjx-container[display="true"]'))
      .map(b => ({wide: b.scrollWidth > b.clientWidth + 1,
                  marked: b.classList.contains('scrolls'),
                  shadow: getComputedStyle(b).backgroundImage !== 'none',
                  text: b.textContent.slice(0, 30)}))""")
    assert boxes, f"{name}: no display equation found"
    if width == LAPTOP:
        assert [b["text"] for b in boxes if b["wide"]] == [], (
            f"{name}: clipped at {width}"
        )
    else:
        unmarked = [
            b["text"] for b in boxes if b["wide"] and not (b["marked"] and b["shadow"])
        ]
        assert unmarked == [], f"{name}: equations that scroll without showing it"
    page.close()


@pytest.mark.parametrize("name", PAGES)
def test_no_page_logs_an_error(browser, name):
    page = browser.new_page(viewport={"width": LAPTOP, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto((HTML / f"{name}.html").as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert errors == [], f"{name}: {errors[:3]}"
    page.close()
