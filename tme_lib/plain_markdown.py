"""The book's Markdown (MyST) made plain, for notebooks opened in Jupyter or Colab.

The chapters are written for Jupyter Book: citations are ``{cite}`key``` roles, links to other
pages ``{doc}`` roles, the student version a ``{download}`` role, and some remarks fenced
``{admonition}`` blocks. Jupyter and Colab show those as raw text. :func:`plain` rewrites them:
citations as "(Author Year)" (``{cite:t}``: "Author (Year)") from the book's bibliography, pages
and downloads as links to the published book, directives as block quotes with a bold title,
any other role as its text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from . import config

ROLE = re.compile(r"\{(?P<role>[a-z:]+)\}`(?P<body>[^`]*)`")
LABELLED = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^>]+)>$", re.S)
FENCE = re.compile(
    r"^(?P<ticks>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}[ \t]*(?P<title>[^\n]*)$"
)


def repository_url() -> str:
    """The course's repository (``[project.urls] Repository`` of ``pyproject.toml``)."""
    import tomllib

    project = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"].rstrip("/")


def book_url() -> str:
    """Where the book is published: the repository's GitHub Pages site."""
    owner, name = repository_url().split("github.com/")[1].split("/")[:2]
    return f"https://{owner}.github.io/{name}"


@lru_cache(maxsize=1)
def references() -> dict[str, tuple[str, str]]:
    """``{key: (authors, year)}`` from ``book/references.bib``: "Maas et al.", "Press, Smith and
    Lewis" is shortened the same way ("Press et al." from three authors on)."""
    text = (config.REPO_ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    out = {}
    for entry in re.split(r"\n(?=@)", text):
        key = re.match(r"@\w+\{([^,]+),", entry.strip())
        if not key:
            continue
        authors = re.search(r"author\s*=\s*\{(.*)\},?\s*\n", entry)
        year = re.search(r"year\s*=\s*\{?(\d{4})", entry)
        names = [
            a.split(",")[0].strip(" {}")
            for a in (authors.group(1) if authors else "").split(" and ")
        ]
        label = (
            names[0]
            if len(names) == 1
            else f"{names[0]} and {names[1]}"
            if len(names) == 2
            else f"{names[0]} et al."
        )
        out[key.group(1).strip()] = (label, year.group(1) if year else "n.d.")
    return out


def _cite(body: str, textual: bool) -> str:
    refs = references()
    parts = []
    for key in (k.strip() for k in body.split(",")):
        who, year = refs.get(key, (key, ""))
        parts.append(f"{who} ({year})" if textual else f"{who} {year}".strip())
    return "; ".join(parts) if textual else f"({'; '.join(parts)})"


def _page_link(text: str, target: str) -> str:
    page = Path(target).stem
    return f"[{text}]({book_url()}/notebooks/{page}.html)"


def _role(match: re.Match) -> str:
    role, body = match["role"], match["body"]
    labelled = LABELLED.match(body)
    text, target = (labelled["text"], labelled["target"]) if labelled else (body, body)
    if role in ("cite", "cite:p", "cite:ps"):
        return _cite(body, textual=False)
    if role in ("cite:t", "cite:ts"):
        return _cite(body, textual=True)
    if role in ("doc", "download"):
        return _page_link(text, target)
    if role == "math":
        return f"${body}$"
    return text


def _directives(text: str) -> str:
    """Fenced directives (```` ```{admonition} Title ````, ```` ```{note} ````...) as block
    quotes with a bold title; their ``:option:`` lines are dropped."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i].strip())
        if not fence:
            out.append(lines[i])
            i += 1
            continue
        ticks = fence["ticks"]
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == ticks), len(lines)
        )
        body = [ln for ln in lines[i + 1 : end] if not re.match(r"^\s*:[\w-]+:", ln)]
        title = fence["title"].strip() or fence["name"].capitalize()
        out.append(f"> **{title}**")
        out.append(">")
        out += [f"> {ln}".rstrip() for ln in body]
        i = end + 1
    return "\n".join(out)


def plain(text: str) -> str:
    """``text`` (a Markdown cell of the book) without MyST roles or fenced directives."""
    return ROLE.sub(_role, _directives(text)).replace(
        "see the README", f"see the [README]({repository_url()}#readme)"
    )


def leftovers(text: str) -> list[str]:
    """MyST syntax that Jupyter would show raw: roles and fenced directives."""
    found = [m.group(0) for m in ROLE.finditer(text)]
    return found + [ln for ln in text.split("\n") if FENCE.match(ln.strip())]
