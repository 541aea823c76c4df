"""The help centre's pages: Markdown files per language, rendered once per process, searched.

Public API:

- ``TOPICS``: the pages' slugs in reading order.
- ``page(slug, language) -> HelpPage | None``: one page, rendered (None if there is none).
  The company's own contact details come from settings, not from the files: a line holding
  ``{{SUPPORT_PHONE}}``, ``{{SUPPORT_EMAIL}}`` or ``{{SUPPORT_COUNTER}}`` shows that setting's
  text, and is left out while the setting is empty (a channel nobody configured is not shown).
- ``search(query, language) -> list[SearchHit]``: the sections whose text holds every word of
  ``query`` (case-insensitive; Chinese matched as substrings), best first.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path

import markdown
from flask import current_app

PAGES = Path(__file__).resolve().parents[1] / "help" / "pages"
TOPICS = ("fields", "process", "findings", "photos", "contact")
_HEADING = re.compile(r"^(#{1,3})\s+(.*?)\s*(?:\{#([\w-]+)\})?\s*$")
CONTACT_SETTINGS = ("SUPPORT_PHONE", "SUPPORT_EMAIL", "SUPPORT_COUNTER")
_PLACEHOLDER = re.compile(r"\{\{(" + "|".join(CONTACT_SETTINGS) + r")\}\}")


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    text: str  # plain text, for search


@dataclass(frozen=True)
class HelpPage:
    slug: str
    title: str
    summary: str
    html: str
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class SearchHit:
    slug: str
    page_title: str
    anchor: str
    title: str
    snippet: str


def _language(language: str) -> str:
    return language if (PAGES / language).is_dir() else "zh_CN"


def page(slug: str, language: str) -> HelpPage | None:
    """The help page ``slug`` in ``language`` (zh_CN when that language has none)."""
    contacts = tuple(current_app.config.get(name) or "" for name in CONTACT_SETTINGS)
    return _page(slug, _language(language), contacts)


@functools.cache
def _page(slug: str, language: str, contacts: tuple[str, ...]) -> HelpPage | None:
    if slug not in TOPICS:
        return None
    path = PAGES / language / f"{slug}.md"
    if not path.is_file():
        return None
    lines = _with_contacts(path.read_text(encoding="utf-8").splitlines(), contacts)
    title = _HEADING.match(lines[0]).group(2) if lines and _HEADING.match(lines[0]) else slug
    body = "\n".join(lines[1:]).strip()
    summary = body.split("\n\n", 1)[0].strip()
    rendered = markdown.markdown(body, extensions=["attr_list", "tables", "toc"])
    return HelpPage(slug, title, _plain(summary), rendered, tuple(_sections(lines[1:])))


def _with_contacts(lines: list[str], contacts: tuple[str, ...]) -> list[str]:
    """Fill in the configured contact details; drop the lines of those that are not set."""
    values = dict(zip(CONTACT_SETTINGS, contacts, strict=True))
    kept = []
    for line in lines:
        names = _PLACEHOLDER.findall(line)
        if any(not values[name] for name in names):
            continue
        kept.append(_PLACEHOLDER.sub(lambda m: _escape(values[m.group(1)]), line))
    return kept


def _escape(text: str) -> str:
    """A setting's text as literal Markdown inside a table cell: HTML escaped, markup
    characters backslashed, one line (no markup, no raw HTML, no new cell)."""
    text = html.escape(" ".join(text.split()), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|-])", r"\\\1", text)


def _sections(lines: list[str]) -> list[Section]:
    sections: list[Section] = []
    anchor, title, text = "", "", []
    for line in lines:
        heading = _HEADING.match(line)
        if heading and heading.group(3):
            if anchor:
                sections.append(Section(anchor, title, _plain(" ".join(text))))
            anchor, title, text = heading.group(3), heading.group(2), []
        else:
            text.append(line)
    if anchor:
        sections.append(Section(anchor, title, _plain(" ".join(text))))
    return sections


def _plain(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)  # pictures
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their words
    text = re.sub(r"[*_`#>|{}]", " ", text)
    return html.unescape(re.sub(r"\s+", " ", text)).strip()


def search(query: str, language: str, limit: int = 20) -> list[SearchHit]:
    """Sections of the help pages that contain every word of ``query``, titles first."""
    words = [w.casefold() for w in query.split() if w.strip()][:8]
    if not words:
        return []
    scored: list[tuple[int, int, SearchHit]] = []
    for order, slug in enumerate(TOPICS):
        found = page(slug, language)
        if found is None:
            continue
        for section in found.sections:
            title, text = section.title.casefold(), section.text.casefold()
            if not all(w in title or w in text for w in words):
                continue
            score = sum(3 if w in title else 1 for w in words)
            scored.append(
                (
                    -score,
                    order,
                    SearchHit(
                        slug,
                        found.title,
                        section.anchor,
                        section.title,
                        _snippet(section.text, words),
                    ),
                )
            )
    scored.sort(key=lambda item: (item[0], item[1]))
    return [hit for _, _, hit in scored[:limit]]


def _snippet(text: str, words: list[str], width: int = 90) -> str:
    at = min((text.casefold().find(w) for w in words if w in text.casefold()), default=0)
    start = max(0, at - width // 3)
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")
