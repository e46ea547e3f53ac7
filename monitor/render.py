"""Alert and digest text from Jinja2 templates: plain text, Markdown (chat) and HTML (email).

Shipped templates live in monitor/data/templates; a file of the same name in the configured templates
directory (``templates_dir``, default config/templates/) overrides one. Names:

  alert.title.j2, digest.title.j2                  the title (plain text, every format)
  alert.title.<fmt>.j2, digest.title.<fmt>.j2       optional per-format title
  alert.<fmt>.j2, digest.<fmt>.j2                   the body; fmt = text | markdown | html

Grouping a digest (by watchlist, then by the story's main subtopic) is a pure function, so the templates
only lay out values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from .errors import NotifyError
from .models import StoryView

FORMATS = ("text", "markdown", "html")
NO_SUBTOPIC = ""  # stories without a classifier verdict (or without subtopics)


@dataclass(frozen=True)
class DigestItem:
    """One alert inside a digest."""

    story: StoryView
    watchlist: str
    why: str
    note: str | None = None  # "rate limit": it would have gone out alone but the channel was at its limit

    @property
    def subtopic(self) -> str:
        verdict = self.story.verdict
        return verdict.subtopics[0] if verdict and verdict.subtopics else NO_SUBTOPIC


@dataclass(frozen=True)
class SubtopicGroup:
    subtopic: str  # NO_SUBTOPIC for stories without one
    items: tuple[DigestItem, ...]


@dataclass(frozen=True)
class WatchlistGroup:
    watchlist: str
    subtopics: tuple[SubtopicGroup, ...]

    @property
    def count(self) -> int:
        return sum(len(group.items) for group in self.subtopics)


@dataclass(frozen=True)
class FailureItem:
    """An alert that was given up on, reported in the next digest."""

    title: str
    link: str
    channel: str
    watchlist: str
    error: str


def group_digest(items: Iterable[DigestItem]) -> tuple[WatchlistGroup, ...]:
    """Watchlists in name order; inside each, subtopics in name order (stories without one last), stories in
    publication order. A story is listed under its main (most probable) subtopic only."""
    by_watchlist: dict[str, dict[str, list[DigestItem]]] = {}
    for item in items:
        by_watchlist.setdefault(item.watchlist, {}).setdefault(item.subtopic, []).append(item)
    groups = []
    for watchlist in sorted(by_watchlist):
        subtopics = by_watchlist[watchlist]
        order = sorted(subtopics, key=lambda s: (s == NO_SUBTOPIC, s))
        groups.append(WatchlistGroup(watchlist, tuple(
            SubtopicGroup(s, tuple(sorted(subtopics[s], key=lambda i: (i.story.published, i.story.id))))
            for s in order)))
    return tuple(groups)


def subtopic_label(name: str) -> str:
    """'chips_export_controls' -> 'chips export controls'; stories without a subtopic -> 'other stories'."""
    return name.replace("_", " ") if name else "other stories"


@lru_cache(maxsize=16)
def _environment(override_dir: str | None, fmt: str) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir:
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.PackageLoader("monitor", "data/templates"))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=fmt == "html",
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["subtopic"] = subtopic_label
    env.filters["score"] = lambda value: f"{value:.2f}"
    return env


def _env(override_dir: Path | None, fmt: str) -> jinja2.Environment:
    if fmt not in FORMATS:
        raise NotifyError(f"unknown message format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return _environment(str(override_dir) if override_dir and override_dir.is_dir() else None, fmt)


def _render(kind: str, fmt: str, override_dir: Path | None, context: dict[str, object]) -> tuple[str, str]:
    try:
        # titles are plain text in every format, so they never get HTML escaping
        title_names = [f"{kind}.title.{fmt}.j2", f"{kind}.title.j2"]
        title_template = _env(override_dir, "text").select_template(title_names)
        title = " ".join(title_template.render(**context).split())
        body = _env(override_dir, fmt).get_template(f"{kind}.{fmt}.j2").render(**context)
    except jinja2.TemplateError as exc:
        where = f"{exc.filename}:{exc.lineno}: " if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise NotifyError(f"template error in {kind}.{fmt}: {where}{exc}") from exc
    return title, _squeeze_blank_lines(body).strip() + "\n"


def render_alert(story: StoryView, watchlist: str, why: str, fmt: str = "text",
                 override_dir: Path | None = None, severity: str = "info") -> tuple[str, str]:
    """(title, body) for one story; the link always sits on a line of its own."""
    others = [s for s in story.sources if s != story.feed_name]
    return _render("alert", fmt, override_dir, {"story": story, "watchlist": watchlist, "why": why,
                                                  "others": others, "severity": severity})


def render_digest(channel: str, items: Sequence[DigestItem], failures: Sequence[FailureItem],
                  period_start: datetime, period_end: datetime, zone: ZoneInfo, fmt: str = "text",
                  override_dir: Path | None = None) -> tuple[str, str]:
    """(title, body) of one digest message: every item grouped by watchlist and subtopic, each with its link,
    then the alerts that failed since the previous digest."""
    local = "%Y-%m-%d %H:%M"
    context: dict[str, object] = {
        "channel": channel, "groups": group_digest(items), "count": len(items), "failures": list(failures),
        "period_start": period_start.astimezone(zone).strftime(local),
        "period_end": period_end.astimezone(zone).strftime(local), "timezone": zone.key,
        "overflow": sum(1 for item in items if item.note == "rate limit"),
    }
    return _render("digest", fmt, override_dir, context)


def _squeeze_blank_lines(text: str) -> str:
    """Templates leave blank lines where optional parts were skipped; keep at most one in a row."""
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() or (out and out[-1].strip()):
            out.append(line.rstrip())
    return "\n".join(out)
