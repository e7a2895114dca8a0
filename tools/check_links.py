"""Check the links of the built book (``make linkcheck``, after ``make book``).

    python tools/check_links.py

Every ``href`` and ``src`` of ``book/_build/html``: a link inside the book must name a file
that exists (anchors are left to the browser tests); a link to the web must answer (HEAD,
then GET when HEAD is refused) with a status below 400. Where the machine has no network (the
name of the repository's host does not resolve) the web links are skipped with a message and
only the book's own links are checked. Exit status 1 when a link is broken.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "book" / "_build" / "html"
COLAB = "https://colab.research.google.com/github/"


def checked_address(url: str) -> str:
    """The address to check for ``url``: a Colab launch link is checked as the GitHub file it
    opens (Colab's own page answers for any path)."""
    if url.startswith(COLAB):
        return "https://github.com/" + url.removeprefix(COLAB)
    return url


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.found.append(value)


def links_of(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.found


def broken_internal(page: Path, link: str) -> bool:
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path:
        return False
    return not (page.parent / unquote(parts.path)).exists()


def online(host: str = "github.com") -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def status(url: str) -> int | str:
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(
            url, method=method, headers={"User-Agent": "course-link-check"}
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status
        except urllib.error.HTTPError as error:
            if method == "HEAD" and error.code in (403, 405, 501):
                continue
            return error.code
        except (urllib.error.URLError, OSError) as error:
            return str(error)
    return "no answer"


def main(argv: list[str]) -> int:
    if not (HTML / "intro.html").exists():
        print("No built book: run make book first.")
        return 2
    # the pages of the book (the theme's _static/ holds HTML templates, not pages)
    pages = sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts)
    broken, external = [], {}
    for page in pages:
        for link in links_of(page):
            if link.startswith(("http://", "https://")):
                external.setdefault(checked_address(link), page)
            elif broken_internal(page, link):
                broken.append(f"{page.relative_to(HTML)}: {link} (no such file)")
    if not online():
        print(
            f"Offline: {len(external)} web links not checked (the book's own links are)."
        )
    else:
        with ThreadPoolExecutor(8) as pool:
            for (url, page), code in zip(external.items(), pool.map(status, external)):
                if not isinstance(code, int) or code >= 400:
                    broken.append(f"{page.relative_to(HTML)}: {url} ({code})")
    for line in broken:
        print(line)
    print(f"{len(pages)} pages, {len(external)} web links: {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
