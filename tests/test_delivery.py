"""Delivery acceptance with real local parts (JSON and Mattermost-style HTTP receivers, aiosmtpd) and an
injected clock: digests, quiet hours, urgent alerts, rate limits, a receiver that is down, failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

from delivery_support import Clock, FeedSite, SubtopicScorer, local, open_rig, story, write_config
from helpers import cli
from pytest_httpserver import HTTPServer


def _links(text: str) -> list[str]:
    return re.findall(r"https://news\.example/[\w-]+", text)


def _mmost(receiver) -> str:  # type: ignore[no-untyped-def]
    return f"mmost://127.0.0.1:{receiver.port}/hooktoken"


def test_digest_is_one_message_per_channel_grouped_with_every_link(tmp_path: Path, httpserver: HTTPServer,
                                                                   receiver, smtp, capsys) -> None:
    clock = Clock(local("2030-03-04 06:00"))
    site = FeedSite(httpserver)
    channels = {"default": ["console://"],
                "chat": {"urls": [_mmost(receiver)], "mode": "digest", "digest": {"at": ["08:00", "18:00"]}},
                "mail": {"urls": [smtp.url()], "mode": "digest", "digest": {"at": "08:00"}}}
    watchlists = [{"name": "china-watch", "keywords": {"any": ["China"]}, "channels": ["chat", "mail"]},
                  {"name": "chips-watch", "keywords": {"any": ["chips"]}, "channels": ["chat", "mail"]}]
    config = write_config(tmp_path / "config", channels, site.url, watchlists)
    rig = open_rig(config, tmp_path / "state", clock, site, scorer=SubtopicScorer())
    try:
        first = [story("chips 1", clock.now), story("cyber 1", clock.now), story("plain 1", clock.now)]
        rig.ingest(*first)
        clock.advance(hours=1)
        second = [story("chips 2", clock.now), story("apps 1", clock.now)]
        rig.ingest(*second)
        clock.advance(minutes=59)  # 07:59: not yet
        rig.deliver()
        assert receiver.received == [] and smtp.mailbox.messages == []
        capsys.readouterr()
        assert cli(config, tmp_path / "state", "alerts", "--pending") == 0
        # a story both watchlists match is one alert per channel, naming both: 5 stories x 2 channels
        assert capsys.readouterr().out.count("pending (digest)") == 10

        clock.advance(minutes=2)  # 08:01
        outcome = rig.deliver()
        assert outcome.digests == 2
        assert len(receiver.received) == 1 and len(smtp.mailbox.messages) == 1
        text = receiver.received[0]["text"]
        period = [item.link for item in first + second]
        assert sorted(set(_links(text))) == sorted(period)
        # grouped: each watchlist, then subtopics (the story's main one), stories without one last
        china = text.index("### china-watch (3)")
        both = text.index("### china-watch, chips-watch (2)")
        sections = [text.index(h, china) for h in ("**apps data**", "**cyber espionage**", "**other stories**")]
        assert china < sections[0] < sections[1] < sections[2] < both
        assert set(_links(text[sections[2]:both])) == {first[2].link}
        assert set(_links(text[both:])) == {first[0].link, second[0].link}
        assert "**chips export controls**" in text[both:]
        assert "monitor digest: 5 alerts" in text.splitlines()[0]
        html = "\n".join(smtp.bodies())
        assert all(f'href="{link}"' in html for link in period)
        assert smtp.subjects()[0].startswith("monitor digest: 5 alerts")

        # the next period holds only what came after 08:00; chat digests at 18:00, mail the next morning
        third = story("plain 2", clock.now)
        rig.ingest(third)
        clock.advance(hours=9)  # 17:01
        rig.deliver()
        assert len(receiver.received) == 1
        clock.advance(minutes=60)  # 18:01
        rig.deliver()
        assert len(receiver.received) == 2 and len(smtp.mailbox.messages) == 1
        assert set(_links(receiver.received[1]["text"])) == {third.link}
        clock.advance(hours=14)  # 08:01 next day
        rig.deliver()
        assert len(receiver.received) == 2 and len(smtp.mailbox.messages) == 2
        assert set(_links(smtp.bodies()[-1])) == {third.link}
        assert set(rig.alert_states().values()) == {"sent"}
    finally:
        rig.close()


def test_quiet_hours_hold_then_release_and_urgent_alerts_pass(tmp_path: Path, httpserver: HTTPServer,
                                                             receiver, capsys) -> None:
    clock = Clock(local("2030-03-04 21:50"))
    site = FeedSite(httpserver)
    channels = {"default": [receiver.url()], "chat": {"urls": [receiver.url("chat")],
                                                      "quiet_hours": {"start": "22:00", "end": "07:00"}}}
    watchlists = [{"name": "china-watch", "keywords": {"any": ["China"]}, "channels": ["chat"]},
                  {"name": "breach-pager", "keywords": {"any": ["breach"]},
                   "channels": [{"channel": "chat", "urgent": True, "severity": "failure"}]}]
    config = write_config(tmp_path / "config", channels, site.url, watchlists)
    rig = open_rig(config, tmp_path / "state", clock, site)
    try:
        before = story("before", clock.now)
        rig.ingest(before)
        assert receiver.titles() == [before.title]

        clock.advance(minutes=40)  # 22:30: quiet
        calm, urgent = story("calm", clock.now), story("breach", clock.now)
        rig.ingest(calm, urgent)
        # the urgent story goes through once (both watchlists' reasons in one message); the calm one waits
        assert receiver.titles() == [before.title, urgent.title]
        assert receiver.received[1]["type"] == "failure"
        assert "breach-pager" in receiver.received[1]["message"]
        capsys.readouterr()
        assert cli(config, tmp_path / "state", "alerts", "--pending") == 0
        listing = capsys.readouterr().out
        assert listing.count("pending (held)") == 1

        clock.advance(hours=4)
        rig.deliver()
        rig.pipeline.run_cycle(all_feeds=True)  # `run --once` ignores retry backoff, not quiet hours
        clock.now = local("2030-03-05 06:59")
        rig.deliver()
        assert len(receiver.received) == 2

        clock.now = local("2030-03-05 07:00")
        rig.deliver()
        assert receiver.titles()[2:] == [calm.title]
        rig.deliver()
        assert len(receiver.received) == 3
    finally:
        rig.close()


def test_rate_limit_overflow_arrives_in_the_next_digest(tmp_path: Path, httpserver: HTTPServer,
                                                       receiver) -> None:
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    channels = {"default": {"urls": [receiver.url()], "rate_limit": 3, "digest": {"every": "1h"}}}
    rig = open_rig(write_config(tmp_path / "config", channels, site.url), tmp_path / "state", clock, site)
    try:
        burst = [story(f"burst {i}", clock.now) for i in range(5)]
        rig.ingest(*burst)
        assert len(receiver.received) == 3
        overflow = [item for item in burst if item.title not in receiver.titles()]

        clock.advance(minutes=30)
        late = story("late", clock.now)
        rig.ingest(late)  # still 3 sent in the last hour: to the digest too
        assert len(receiver.received) == 3

        clock.advance(minutes=30, seconds=30)  # 11:00:30: the hourly digest
        rig.deliver()
        assert len(receiver.received) == 4
        digest = receiver.received[3]
        assert digest["title"].startswith("monitor digest: 3 alerts")
        assert "3 held back by the rate limit" in digest["message"]
        assert sorted(_links(digest["message"])) == sorted([overflow[0].link, overflow[1].link, late.link])

        clock.advance(minutes=5)  # the 10:00 sends have left the one-hour window
        after = story("after", clock.now)
        rig.ingest(after)
        assert receiver.titles()[4] == after.title
        every_link = [link for item in receiver.received for link in _links(item["message"])]
        expected = [item.link for item in [*burst, late, after]]
        assert sorted(every_link) == sorted(expected)  # each story exactly once, none dropped
    finally:
        rig.close()


def test_receiver_down_for_three_cycles_then_every_alert_arrives_once(tmp_path: Path, httpserver: HTTPServer,
                                                                     receiver) -> None:
    from localparts import start_receiver

    digest_receiver = start_receiver()
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    channels = {"default": [receiver.url()],
                "summary": {"urls": [digest_receiver.url()], "mode": "digest", "digest": {"every": "1h"}}}
    rig = open_rig(write_config(tmp_path / "config", channels, site.url), tmp_path / "state", clock, site)
    try:
        receiver.status = digest_receiver.status = 503
        stories = [story(f"outage {i}", clock.now) for i in range(4)]
        rig.ingest(*stories)  # cycle 1: refused, retry in 1 min
        assert receiver.refused == 4
        clock.advance(minutes=1)
        rig.deliver()  # cycle 2: refused, retry in 2 min
        clock.advance(minutes=1)
        rig.deliver()  # backoff: nothing is due, nothing is tried
        assert receiver.refused == 8
        clock.advance(minutes=1)
        rig.deliver()  # cycle 3: refused, retry in 4 min
        assert receiver.refused == 12 and receiver.received == []

        receiver.status = 200
        clock.advance(minutes=4)
        rig.deliver()
        assert sorted(receiver.titles()) == sorted(item.title for item in stories)

        clock.now = local("2030-03-04 11:00")  # the digest channel is still down for its digest
        rig.deliver()
        assert digest_receiver.refused == 1
        digest_receiver.status = 200
        clock.advance(minutes=2)
        rig.deliver()
        for _ in range(3):
            clock.advance(minutes=30)
            rig.deliver()
        assert len(receiver.received) == 4 and len(digest_receiver.received) == 1
        assert sorted(_links(digest_receiver.received[0]["message"])) == sorted(item.link for item in stories)
        assert set(rig.alert_states().values()) == {"sent"}
    finally:
        rig.close()
        digest_receiver.server.shutdown()
        digest_receiver.server.server_close()


def test_undeliverable_alert_fails_after_max_age_and_is_reported(tmp_path: Path, httpserver: HTTPServer,
                                                                 receiver, capsys) -> None:
    from localparts import start_receiver

    pager = start_receiver()
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    channels = {"default": [pager.url()],
                "summary": {"urls": [receiver.url()], "mode": "digest", "digest": {"every": "1h"}}}
    watchlists = [{"name": "china-watch", "keywords": {"any": ["China"]}, "channels": ["default"]}]
    config = write_config(tmp_path / "config", channels, site.url, watchlists)
    state = tmp_path / "state"
    rig = open_rig(config, state, clock, site)
    try:
        pager.status = 503
        lost = story("lost", clock.now)
        rig.ingest(lost)
        while rig.alert_states()[lost.title] == "pending":  # follow the backoff until retry_max_age (2h)
            row = rig.store.alerts(limit=1)[0]
            assert row.alert.next_attempt_at is not None
            clock.now = max(clock.now, row.alert.next_attempt_at)
            rig.deliver()
        assert rig.alert_states()[lost.title] == "failed"
        assert clock.now - local("2030-03-04 10:00") > rig.pipeline.deliverer._retry_delay(1) * 100

        capsys.readouterr()
        assert cli(config, state, "alerts", "--failed", "--json") == 0
        failed = json.loads(capsys.readouterr().out)
        assert [a["title"] for a in failed] == [lost.title] and "503" in failed[0]["last_error"]
        assert cli(config, state, "status") == 0
        status = capsys.readouterr().out
        assert "1 failed" in status and lost.title in status
        assert "digest for summary: next at 2030-03-04 13:00 Europe/Paris" in status

        clock.advance(hours=1)  # the next digest of the digest channel reports it
        rig.deliver()
        assert len(receiver.received) == 1
        report = receiver.received[0]["message"]
        assert "1 alert could not be delivered" in report and lost.title in report and lost.link in report

        assert cli(config, state, "alerts", "retry", "--all-failed") == 0
        pager.status = 200
        rig.deliver()
        assert pager.titles() == [lost.title]
        rig.deliver()
        assert len(pager.received) == 1 and rig.alert_states()[lost.title] == "sent"
    finally:
        rig.close()
        pager.server.shutdown()
        pager.server.server_close()


def test_html_email_renders_title_source_score_and_link(tmp_path: Path, httpserver: HTTPServer, smtp) -> None:
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    rig = open_rig(write_config(tmp_path / "config", {"default": [smtp.url()]}, site.url), tmp_path / "state",
                   clock, site, scorer=SubtopicScorer())
    try:
        item = story("chips mail", clock.now)
        rig.ingest(item)
        assert smtp.subjects() == [item.title]
        message = smtp.mailbox.messages[0]
        html = next(part.get_payload(decode=True).decode() for part in message.walk()
                    if part.get_content_type() == "text/html")
        assert f'<a href="{item.link}">{item.title}</a>' in html
        assert "<b>Source:</b> Wire" in html
        assert "<b>Score:</b> 0.87 (chips export controls)" in html
    finally:
        rig.close()


def test_markdown_chat_message_renders_title_source_score_and_link(tmp_path: Path, httpserver: HTTPServer,
                                                                  receiver) -> None:
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    rig = open_rig(write_config(tmp_path / "config", {"default": [_mmost(receiver)]}, site.url),
                   tmp_path / "state", clock, site, scorer=SubtopicScorer())
    try:
        item = story("cyber chat", clock.now)
        rig.ingest(item)
        text = receiver.received[0]["text"]
        assert f"**[{item.title}]({item.link})**" in text
        assert "**Source:** Wire" in text
        assert "**Score:** 0.87 (cyber espionage)" in text
        assert item.link in text.splitlines()
    finally:
        rig.close()


def test_user_templates_override_the_shipped_ones(tmp_path: Path, httpserver: HTTPServer, receiver) -> None:
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    config = write_config(tmp_path / "config", {"default": [receiver.url()]}, site.url)
    templates = tmp_path / "config" / "templates"
    templates.mkdir()
    (templates / "alert.title.j2").write_text("[{{ watchlist }}] {{ story.title }}")
    (templates / "alert.text.j2").write_text(
        "{{ story.feed_name }} says: {{ story.link }}"
        "{% if story.verdict %} ({{ story.verdict.score|score }}){% endif %}\n")
    rig = open_rig(config, tmp_path / "state", clock, site)
    try:
        item = story("custom", clock.now)
        rig.ingest(item)
        assert receiver.received[0]["title"] == f"[china-watch] {item.title}"
        assert receiver.received[0]["message"].strip() == f"Wire says: {item.link}"
    finally:
        rig.close()


def test_a_broken_user_template_keeps_the_alert_pending_with_the_reason(tmp_path: Path,
                                                                       httpserver: HTTPServer,
                                                                       receiver) -> None:
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    config = write_config(tmp_path / "config", {"default": [receiver.url()]}, site.url)
    (tmp_path / "config" / "templates").mkdir()
    (tmp_path / "config" / "templates" / "alert.text.j2").write_text("{{ story.nope }}\n")
    rig = open_rig(config, tmp_path / "state", clock, site)
    try:
        rig.ingest(story("broken", clock.now))
        row = rig.store.alerts(limit=1)[0]
        assert receiver.received == [] and row.alert.state == "pending"
        assert "template error in alert.text" in (row.alert.last_error or "")
    finally:
        rig.close()


def test_notify_test_sends_to_each_url_and_prints_apprise_reason(tmp_path: Path, httpserver: HTTPServer,
                                                                 receiver, capsys) -> None:
    from localparts import start_receiver

    down = start_receiver()
    down.status = 503
    try:
        channels = {"default": [receiver.url()], "team": [receiver.url("team"), down.url("team")]}
        config = write_config(tmp_path / "config", channels, "http://127.0.0.1:9/unused.xml")
        state = tmp_path / "state"
        assert cli(config, state, "notify", "test", "default") == 0
        assert "ok" in capsys.readouterr().out and receiver.titles() == ["monitor test message (default)"]
        assert cli(config, state, "notify", "test") == 1
        out = capsys.readouterr().out
        assert f"team: json://127.0.0.1:{down.port}: FAILED: " in out and "error=503" in out
        assert len(receiver.received) == 3
        assert cli(config, state, "notify", "test", "nope") == 2
        assert "unknown channel 'nope'" in capsys.readouterr().err
    finally:
        down.server.shutdown()
        down.server.server_close()


def test_a_retry_goes_only_to_the_url_that_refused(tmp_path: Path, httpserver: HTTPServer, receiver) -> None:
    from localparts import start_receiver

    flaky = start_receiver()
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    config = write_config(tmp_path / "config", {"default": [receiver.url(), flaky.url()]}, site.url)
    rig = open_rig(config, tmp_path / "state", clock, site)
    try:
        flaky.status = 503
        item = story("two urls", clock.now)
        rig.ingest(item)
        assert receiver.titles() == [item.title] and rig.alert_states()[item.title] == "pending"
        flaky.status = 200
        clock.advance(minutes=1)
        rig.deliver()
        assert receiver.titles() == [item.title] and flaky.titles() == [item.title]
        assert rig.alert_states()[item.title] == "sent"
    finally:
        rig.close()
        flaky.server.shutdown()
        flaky.server.server_close()
