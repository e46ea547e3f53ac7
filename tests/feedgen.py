"""Build RSS documents for tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    summary: str = ""
    guid: str | None = None
    published: datetime | None = None


def rss(title: str, items: list[Item]) -> str:
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{escape(title)}</title>'
             f"<link>https://example.org/</link><description>test feed</description>"]
    for item in items:
        when = format_datetime(item.published or datetime.now(UTC), usegmt=True)
        parts.append(f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
                     f"<guid>{escape(item.guid or item.link)}</guid><pubDate>{when}</pubDate>"
                     f"<description>{escape(item.summary)}</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts)
