"""A test rig for delivery: a real pipeline and store on a temp directory, a local feed whose items the
test adds between cycles, real local receivers, and an injected clock (no sleeps)."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from feedgen import Item, rss
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import load_validated
from monitor.models import Verdict
from monitor.pipeline import Pipeline
from monitor.store import Store

ZONE = "Europe/Paris"


class Clock:
    """The injected clock: tests move time, nothing sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def local(text: str, zone: str = ZONE) -> datetime:
    """'2030-03-04 21:30' in the test time zone -> an aware UTC datetime."""
    from zoneinfo import ZoneInfo

    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


@dataclass
class FeedSite:
    """One RSS feed served by pytest-httpserver; the test appends items between cycles."""

    server: HTTPServer
    path: str = "/feed.xml"
    items: list[Item] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.expect_request(self.path).respond_with_handler(self._serve)

    def _serve(self, request: Request) -> Response:
        return Response(rss("Wire", list(reversed(self.items))), content_type="application/rss+xml")

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)


_rng = random.Random(6)


def _word() -> str:
    return "".join(_rng.choice(string.ascii_lowercase) for _ in range(8))


def story(label: str, when: datetime, summary: str | None = None) -> Item:
    """A distinct matching story (words no other story shares, so clustering keeps stories apart)."""
    words = " ".join(_word() for _ in range(4))
    slug = label.lower().replace(" ", "-")
    return Item(title=f"China {label}: {words}", link=f"https://news.example/{slug}",
                summary=summary if summary is not None else " ".join(_word() for _ in range(12)),
                published=when - timedelta(minutes=1))


class SubtopicScorer:
    """A stand-in classifier: the story's label names its subtopic ('chips 1' -> chips_export_controls)."""

    threshold = 0.5
    TOPICS = {"chips": "chips_export_controls", "cyber": "cyber_espionage", "apps": "apps_data"}

    def predict(self, title: str, summary: str) -> Verdict:
        for word, topic in self.TOPICS.items():
            if word in title.lower():
                return Verdict(score=0.87, subtopics=(topic,), threshold=self.threshold)
        return Verdict(score=0.62, subtopics=(), threshold=self.threshold)


WATCHLIST = {"name": "china-watch", "keywords": {"any": ["China"]}}


def write_config(root: Path, channels: dict[str, Any], feed_url: str,
                 watchlists: list[dict[str, Any]] | None = None, **settings: Any) -> Path:
    """monitor.yaml + feeds.yaml + watchlists/ in ``root``; every watchlist matches stories naming China."""
    root.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"timezone": ZONE, "channels": channels, "classifier": {"enabled": False},
                            "alerts": {"max_age": None, "retry_base": "1m", "retry_max_age": "2h"}}
    for key, value in settings.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    (root / "monitor.yaml").write_text(yaml.safe_dump(data))
    (root / "feeds.yaml").write_text(yaml.safe_dump({"feeds": [{"url": feed_url, "name": "Wire"}]}))
    (root / "watchlists").mkdir(exist_ok=True)
    for spec in watchlists or [{**WATCHLIST, "channels": list(channels)}]:
        (root / "watchlists" / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))
    return root / "monitor.yaml"


@dataclass
class Rig:
    config_path: Path
    state: Path
    clock: Clock
    site: FeedSite
    store: Store
    pipeline: Pipeline

    def ingest(self, *items: Item) -> None:
        """New items appear in the feed; one full cycle polls it, queues alerts and delivers what is due."""
        self.site.items.extend(items)
        self.pipeline.run_cycle(all_feeds=True)

    def deliver(self) -> Any:
        """A delivery pass at the clock's time, honouring retry backoff (what a daemon tick does)."""
        return self.pipeline.deliverer.deliver_due()

    def alert_states(self) -> dict[str, str]:
        return {row.alert.title: row.alert.state for row in self.store.alerts(limit=10000)}

    def close(self) -> None:
        self.pipeline.close() if hasattr(self.pipeline, "close") else None
        self.store.close()


def open_rig(config_path: Path, state: Path, clock: Clock, site: FeedSite, scorer: Any = None) -> Rig:
    config, watchlists = load_validated(config_path)
    store = Store.open(state)
    pipeline = Pipeline(config, store, watchlists, scorer=scorer, clock=clock)
    return Rig(config_path, state, clock, site, store, pipeline)
