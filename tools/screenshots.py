"""Screenshots of the built book's pages, to look at them as a reader would.

    python tools/screenshots.py [--height 6000] [page ...]

Opens each page of ``book/_build/html`` (default: every page of the table of contents) in
headless Chromium (Debian package ``chromium``; ``CHROMIUM`` names another binary) and writes
``book/_build/screenshots/<page>.png``, 1280 pixels wide (``--width``; other widths add
``-<width>px`` to the name) and ``--height`` tall. Offline: the
browser is told not to touch the network, so a page that needs the network (a CDN script, a
remote image) shows it here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "book" / "_build" / "html"
OUT = ROOT / "book" / "_build" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
]


def toc_pages() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []) + [toc]:
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages


def shoot(browser: str, page: str, height: int, width: int = 1280) -> Path:
    html = HTML / f"{page}.html"
    if not html.exists():
        sys.exit(f"{html} does not exist: build the book first (make book).")
    suffix = "" if width == 1280 else f"-{width}px"
    png = OUT / f"{page.replace('/', '__')}{suffix}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return png


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pages", nargs="*", help="pages without .html (default: the whole toc)"
    )
    parser.add_argument("--height", type=int, default=6000)
    parser.add_argument(
        "--width", type=int, default=1280, help="window width (390: a phone's)"
    )
    args = parser.parse_args(argv)
    browser = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not browser:
        sys.exit(
            "No Chromium found: install the Debian package 'chromium' or set CHROMIUM."
        )
    for page in args.pages or toc_pages():
        print(shoot(browser, page, args.height, args.width).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
