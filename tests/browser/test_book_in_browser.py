"""The built book as readers see it, in headless Chromium driven by Playwright.

Run after ``make book`` (``make browser``); skipped when the book is not built or when
Chromium or Playwright is missing. Every page of the table of contents is opened at a phone
width (390 px) and a laptop width (1280 px).
"""

from __future__ import annotations

import os
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
KNOWN_WIDE = {
    "notebooks/01_tme9_global_attention",
    "notebooks/02_tme10_self_attention",
}
KNOWN_CAPTIONS = {"notebooks/01_tme9_global_attention"}


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
