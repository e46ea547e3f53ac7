"""OPML 1.0/2.0 import and export of feed lists (the format every feed reader speaks). Pure.

Import reads every ``<outline>`` with an ``xmlUrl``; the titles of enclosing folder outlines and the
``category`` attribute become tags. Export writes one outline per feed, its tags in ``category``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from .errors import ConfigError


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()


def parse_opml(text: bytes | str, source: str = "OPML") -> list[OpmlFeed]:
    """Feeds in an OPML document, in order, without duplicate URLs; ConfigError when it is not OPML."""
    if "<!ENTITY" in (text if isinstance(text, str) else text.decode("utf-8", "replace")).upper():
        raise ConfigError([f"{source}:1: refused: the document declares XML entities"])
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else 1
        raise ConfigError([f"{source}:{line}: not valid XML: {exc}"]) from None
    if root.tag.lower() != "opml" or root.find("body") is None:
        raise ConfigError([f"{source}:1: not an OPML document (no <opml><body>)"])
    found: list[OpmlFeed] = []
    seen: set[str] = set()
    _walk(root.find("body"), (), found, seen)  # type: ignore[arg-type]
    return found


def _walk(node: ET.Element, folders: tuple[str, ...], found: list[OpmlFeed], seen: set[str]) -> None:
    for outline in node.findall("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        title = (outline.get("title") or outline.get("text") or "").strip()
        if url:
            if url not in seen:
                seen.add(url)
                categories = [c.strip().strip("/") for c in (outline.get("category") or "").split(",")]
                tags = tuple(dict.fromkeys(t for t in (*folders, *categories) if t))
                found.append(OpmlFeed(url=url, name=title or None, tags=tags))
        else:  # a folder
            _walk(outline, (*folders, title) if title else folders, found, seen)


def to_opml(feeds: list[OpmlFeed], title: str = "monitor feeds", now: datetime | None = None) -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(UTC), usegmt=True)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.name or feed.url, "title": feed.name or feed.url, "xmlUrl": feed.url}
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
