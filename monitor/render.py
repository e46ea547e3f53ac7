"""Alert text from Jinja2 templates: plain text, Markdown (chat) and HTML (email).

Shipped templates live in monitor/data/templates; a file of the same name in config/templates/ overrides one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from .models import StoryView

FORMATS = ("text", "markdown", "html")


@lru_cache(maxsize=8)
def _environment(override_dir: str | None, fmt: str) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir:
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.PackageLoader("monitor", "data/templates"))
    return jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=fmt == "html",
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                              trim_blocks=False, lstrip_blocks=True)


def render_alert(story: StoryView, watchlist: str, why: str, fmt: str = "text",
                 override_dir: Path | None = None) -> tuple[str, str]:
    """(title, body) for one story; the link always sits on a line of its own."""
    env = _environment(str(override_dir) if override_dir and override_dir.is_dir() else None, fmt)
    others = [s for s in story.sources if s != story.feed_name]
    body = env.get_template(f"alert.{fmt}.j2").render(story=story, watchlist=watchlist, why=why, others=others)
    return story.title, _squeeze_blank_lines(body).strip() + "\n"


def _squeeze_blank_lines(text: str) -> str:
    """Templates leave blank lines where optional parts were skipped; keep at most one in a row."""
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() or (out and out[-1].strip()):
            out.append(line.rstrip())
    return "\n".join(out)
