"""The storing hot path builds each new story's view from its lead entry instead of reading it back, and
scores a feed's new stories in one batch: what watchlists see must be exactly what the store holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from feedgen import Item, rss
from helpers import write_config

from monitor.app import load_validated
from monitor.models import StoryView, Verdict
from monitor.pipeline import Pipeline
from monitor.store import Store

NOW = datetime(2026, 5, 4, 12, 30, 15, 123456, tzinfo=UTC)


class BatchScorer:
    """A stand-in classifier with the Classifier's batch call; remembers the size of every batch."""

    threshold = 0.5

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, title: str, summary: str = "") -> Verdict:
        return self.predict_many([(title, summary)])[0]

    def predict_many(self, items: list[tuple[str, str]]) -> list[Verdict]:
        self.batches.append(len(items))
        return [Verdict(score=0.9 if "chip" in title.lower() else 0.2, subtopics=("chips",),
                        top_terms=("chip",), model_version="test-1") for title, _ in items]


class Recording:
    """A watchlist that remembers every story view it was asked about, then decides as the real one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[StoryView] = []

    def match(self, view: StoryView, doc: Any = None) -> Any:
        self.seen.append(view)
        return self.inner.match(view, doc)


def _feed(tmp_path: Path, name: str, items: list[Item]) -> str:
    path = tmp_path / f"{name}.xml"
    path.write_text(rss(name, items))
    return path.as_uri()


def test_new_story_views_equal_the_stored_stories_and_backlog_is_scored_not_matched(
        tmp_path: Path, config_dir: Path) -> None:
    fresh = NOW - timedelta(hours=2)
    old = NOW - timedelta(days=10)  # older than alerts.max_age: stored and scored, never alerted
    gov = _feed(tmp_path, "gov", [
        Item("China adds chip makers to the Entity List", "https://gov.example/1", "<p>Export rules.</p>",
             published=fresh),
        Item("Beijing answers the new export rules", "https://gov.example/2", "Ministry says &amp; warns",
             published=fresh - timedelta(minutes=5)),
        Item("An old notice about chip exports to China", "https://gov.example/3", "Archive.", published=old),
    ])
    news = _feed(tmp_path, "news", [
        Item("Huawei unveils a phone chip", "https://news.example/a", "Shenzhen launch event.", published=fresh),
    ])
    config_path = write_config(config_dir, ["json://127.0.0.1:9/alerts"], [
        {"url": gov, "name": "Regulator", "tags": ["government", "export"]},
        {"url": news, "name": "Wire"},
    ], alerts={"max_age": 3 * 86400})
    config, watchlists = load_validated(config_path)
    recording = [Recording(w) for w in watchlists]
    scorer = BatchScorer()
    store = Store.open(tmp_path / "state")
    pipeline = Pipeline(config, store, recording, scorer=scorer, clock=lambda: NOW)  # type: ignore[arg-type]
    try:
        stats = pipeline.run_cycle(all_feeds=True)
        assert stats.entries_new == 4 and stats.stories_new == 4
        assert sorted(scorer.batches) == [1, 3]  # one classifier call per feed
        seen = recording[0].seen
        assert sorted(v.title for v in seen) == ["Beijing answers the new export rules",
                                                  "China adds chip makers to the Entity List",
                                                  "Huawei unveils a phone chip"]  # not the old notice
        for view in seen:
            row = store.story(view.id)
            assert row is not None and row.alertable
            assert view == row.view  # tags, sources, verdict, times: exactly what the store gives
        regulator = next(v for v in seen if v.feed_name == "Regulator")
        assert set(regulator.feed_tags) == {"government", "export"}
        assert regulator.verdict is not None and regulator.verdict.threshold == 0.5
        backlog = [r for r in store.recent_stories() if not r.alertable]
        assert [r.view.title for r in backlog] == ["An old notice about chip exports to China"]
        assert backlog[0].view.verdict is not None  # scored like every new story
    finally:
        pipeline.close()
        store.close()
