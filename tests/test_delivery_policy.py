"""The delivery policy as pure functions of a channel's settings and `now`; digest grouping and templates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.config import ChannelSpec
from monitor.delivery import (
    ChannelPolicy,
    Hold,
    SendNow,
    ToDigest,
    decide,
    digest_due,
    next_digest,
    next_local_time,
    quiet_until,
)
from monitor.models import StoryView, Verdict
from monitor.render import DigestItem, group_digest, render_alert, render_digest

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=PARIS).astimezone(UTC)


def policy(**spec: object) -> ChannelPolicy:
    return ChannelPolicy.from_spec("chat", ChannelSpec.model_validate({"urls": ["json://x"], **spec}), PARIS)


QUIET = {"quiet_hours": {"start": "22:00", "end": "07:00"}}


@pytest.mark.parametrize("when, held_until", [
    ("2030-03-04 21:59", None),
    ("2030-03-04 22:00", "2030-03-05 07:00"),
    ("2030-03-05 03:00", "2030-03-05 07:00"),
    ("2030-03-05 06:59", "2030-03-05 07:00"),
    ("2030-03-05 07:00", None),
    ("2030-03-05 12:00", None),
])
def test_quiet_hours_across_midnight(when: str, held_until: str | None) -> None:
    assert quiet_until(policy(**QUIET), at(when)) == (at(held_until) if held_until else None)


def test_quiet_hours_within_one_day_and_empty_window() -> None:
    lunch = policy(quiet_hours={"start": "12:00", "end": "14:00"})
    assert quiet_until(lunch, at("2030-03-04 13:00")) == at("2030-03-04 14:00")
    assert quiet_until(lunch, at("2030-03-04 11:59")) is None
    assert quiet_until(lunch, at("2030-03-04 23:00")) is None
    assert quiet_until(policy(quiet_hours={"start": "09:00", "end": "09:00"}), at("2030-03-04 09:00")) is None


def test_quiet_hours_end_is_local_time_across_a_dst_change() -> None:
    # Europe/Paris moves to summer time on 2030-03-31 at 02:00: the night is one hour shorter in UTC
    until = quiet_until(policy(**QUIET), at("2030-03-30 23:00"))
    assert until == at("2030-03-31 07:00")
    assert until is not None and until.astimezone(PARIS).hour == 7
    assert until - at("2030-03-30 23:00") == timedelta(hours=7)


def test_decide_hold_digest_or_send() -> None:
    p = policy(rate_limit=3, **QUIET)
    night, day = at("2030-03-04 23:00"), at("2030-03-05 10:00")
    assert decide(p, night, urgent=False, sent_last_hour=0) == Hold(at("2030-03-05 07:00"), "quiet hours")
    assert decide(p, night, urgent=True, sent_last_hour=0) == SendNow()
    assert decide(p, day, urgent=False, sent_last_hour=2) == SendNow()
    assert decide(p, day, urgent=False, sent_last_hour=3) == ToDigest("rate limit")
    assert decide(p, day, urgent=True, sent_last_hour=3) == SendNow()
    assert decide(policy(), day, urgent=False, sent_last_hour=1000) == SendNow()


def test_next_local_time_is_strictly_after() -> None:
    assert next_local_time(at("2030-03-04 07:59"), time(8, 0), PARIS) == at("2030-03-04 08:00")
    assert next_local_time(at("2030-03-04 08:00"), time(8, 0), PARIS) == at("2030-03-05 08:00")


def test_digest_daily_at_local_times() -> None:
    p = policy(mode="digest", digest={"at": ["08:00", "18:00"]})
    last = at("2030-03-04 06:00")
    assert next_digest(last, p) == at("2030-03-04 08:00")
    assert digest_due(last, at("2030-03-04 07:59"), p) is None
    assert digest_due(last, at("2030-03-04 08:01"), p) == at("2030-03-04 08:00")
    assert next_digest(at("2030-03-04 08:00"), p) == at("2030-03-04 18:00")
    # the daemon was down for two days: the missed slots collapse into one digest, for the latest slot
    assert digest_due(last, at("2030-03-06 09:00"), p) == at("2030-03-06 08:00")


def test_digest_every_n_hours_keeps_its_cadence() -> None:
    p = policy(mode="digest", digest={"every": "4h"})
    last = at("2030-03-04 06:00")
    assert digest_due(last, at("2030-03-04 09:59"), p) is None
    assert digest_due(last, at("2030-03-04 10:00"), p) == at("2030-03-04 10:00")
    # a late tick does not shift the schedule, and missed periods collapse
    assert digest_due(last, at("2030-03-04 10:07"), p) == at("2030-03-04 10:00")
    assert digest_due(last, at("2030-03-04 23:00"), p) == at("2030-03-04 22:00")


def test_digest_schedule_defaults_to_hourly() -> None:
    p = policy(mode="digest")
    assert next_digest(at("2030-03-04 06:00"), p) == at("2030-03-04 07:00")
    assert policy(rate_limit=5).digest_every_s == 3600


def test_schedule_accepts_a_single_time_and_yaml_minutes() -> None:
    assert policy(digest={"at": "08:30"}).digest_at == (time(8, 30),)
    assert policy(digest={"at": 510}).digest_at == (time(8, 30),)  # YAML 1.1 reads 08:30 as 510


def _view(story_id: int, title: str, verdict: Verdict | None) -> StoryView:
    return StoryView(id=story_id, title=title, summary="", link=f"https://news.example/{story_id}",
                     feed_name="Wire", published=at("2030-03-04 06:00") + timedelta(minutes=story_id),
                     verdict=verdict)


def test_group_digest_by_watchlist_then_main_subtopic() -> None:
    chips = Verdict(0.9, ("chips_export_controls", "ai"))
    items = [DigestItem(_view(3, "c", None), "b-list", "w"), DigestItem(_view(2, "b", chips), "a-list", "w"),
             DigestItem(_view(1, "a", Verdict(0.7, ("ai",))), "a-list", "w"),
             DigestItem(_view(4, "d", None), "a-list", "w")]
    groups = group_digest(items)
    assert [g.watchlist for g in groups] == ["a-list", "b-list"]
    assert [(s.subtopic, [i.story.id for i in s.items]) for s in groups[0].subtopics] == [
        ("ai", [1]), ("chips_export_controls", [2]), ("", [4])]
    assert groups[0].count == 3


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_alert_templates_with_and_without_a_verdict(fmt: str) -> None:
    scored = _view(1, "Chip curbs widen", Verdict(0.873, ("chips_export_controls",)))
    title, body = render_alert(scored, "china-watch", "keywords: chip", fmt)
    assert title == "Chip curbs widen"
    assert "0.87" in body and "chips export controls" in body and "https://news.example/1" in body
    title, body = render_alert(_view(2, "Plain", None), "china-watch", "keywords: chip", fmt)
    assert "Score" not in body and "https://news.example/2" in body


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_digest_template_lists_every_link(fmt: str) -> None:
    items = [DigestItem(_view(i, f"Story {i}", Verdict(0.8, ("ai",)) if i % 2 else None), "w", "why")
             for i in range(1, 6)]
    title, body = render_digest("chat", items, [], at("2030-03-04 06:00"), at("2030-03-04 08:00"), PARIS, fmt)
    assert "5 alerts" in title
    for i in range(1, 6):
        assert f"https://news.example/{i}" in body
    assert "2030-03-04 08:00" in body


def test_delivery_settings_are_validated_with_file_and_line(tmp_path: Path) -> None:
    from monitor.config import load_config
    from monitor.errors import ConfigError

    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    (tmp_path / "watchlists").mkdir()
    settings = tmp_path / "monitor.yaml"
    settings.write_text("timezone: Mars/Olympus\nchannels:\n  default: [console://]\n  desk:\n"
                        "    urls: [console://]\n    mode: hourly\n    digest: {every: 10s}\n"
                        "    quiet_hours: {start: '25:00', end: '07:00'}\n    rate_limit: 0\n")
    with pytest.raises(ConfigError) as raised:
        load_config(settings)
    problems = "\n".join(raised.value.problems)
    assert f"{settings}:1: field 'timezone': unknown time zone 'Mars/Olympus'" in problems
    assert f"{settings}:6: field 'channels.desk.mode'" in problems
    assert f"{settings}:7: field 'channels.desk.digest.every': a digest period must be at least" in problems
    assert f"{settings}:8: field 'channels.desk.quiet_hours.start': expected a local time HH:MM" in problems
    assert f"{settings}:9: field 'channels.desk.rate_limit'" in problems

    settings.write_text("timezone: Asia/Shanghai\nchannels:\n  default: [console://]\n  desk:\n"
                        "    urls: [console://]\n    mode: digest\n    digest: {at: [08:00, '18:30']}\n"
                        "    quiet_hours: {start: '22:00', end: '07:00'}\n    rate_limit: 5\n")
    config = load_config(settings)
    desk = ChannelPolicy.from_spec("desk", config.channel_specs["desk"], config.zone)
    assert desk.digest_at == (time(8, 0), time(18, 30)) and desk.rate_limit == 5 and desk.mode == "digest"
