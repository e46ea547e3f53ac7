"""Secrets in notification URLs stay out of logs, the outbox and CLI output: a channel whose URLs carry a
password and path tokens fails against real local parts (a receiver answering 500, a closed port)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from delivery_support import Clock, FeedSite, local, open_rig, story, write_config
from helpers import cli
from localparts import free_port, start_receiver
from pytest_httpserver import HTTPServer

from monitor.app import load_validated
from monitor.errors import ConfigError
from monitor.notify import redact, scrub

SECRETS = ("s3cret", "path-token", "closed-t0ken")


def _assert_clean(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"{leaked} in:\n{text}"


def test_failing_channel_names_its_urls_without_their_secrets(tmp_path: Path, httpserver: HTTPServer, caplog,
                                                               capsys) -> None:
    broken = start_receiver()
    broken.status = 500
    closed = free_port()  # nothing listens there: urllib3's error quotes the request path
    urls = [f"json://user:s3cret@127.0.0.1:{broken.port}/path-token",
            f"json://user:s3cret@127.0.0.1:{closed}/closed-t0ken?token=s3cret"]
    clock = Clock(local("2030-03-04 10:00"))
    site = FeedSite(httpserver)
    config = write_config(tmp_path / "config", {"default": ["console://"], "pager": urls}, site.url,
                          [{"name": "china-watch", "keywords": {"any": ["China"]}, "channels": ["pager"]}])
    state = tmp_path / "state"
    caplog.set_level(logging.DEBUG)
    # apprise's (and urllib3's) raw debug output is shown only with -vv; pin that, whatever ran before
    caplog.set_level(logging.INFO, logger="apprise")
    rig = open_rig(config, state, clock, site)
    try:
        lost = story("lost", clock.now)
        rig.ingest(lost)
        assert broken.refused == 1
        pending = rig.store.alerts(limit=1)[0].alert
        assert pending.last_error is not None
        _assert_clean(pending.last_error)
        assert f"URL #1 json://***@127.0.0.1:{broken.port}: " in pending.last_error and "500" in pending.last_error
        assert f"URL #2 json://***@127.0.0.1:{closed}: " in pending.last_error
        assert "with url: /***" in pending.last_error  # the refused connection's reason, path masked
        while rig.alert_states()[lost.title] == "pending":  # follow the backoff until retry_max_age
            row = rig.store.alerts(limit=1)[0]
            assert row.alert.next_attempt_at is not None
            clock.now = max(clock.now, row.alert.next_attempt_at)
            rig.deliver()
        failed = rig.store.alerts(state="failed")[0].alert
    finally:
        rig.close()
        broken.server.shutdown()
        broken.server.server_close()
    assert failed.last_error is not None
    _assert_clean(failed.last_error)

    assert "channel 'pager'" in caplog.text and "failed for good" in caplog.text
    _assert_clean(caplog.text)

    capsys.readouterr()
    for args in (["alerts"], ["alerts", "--failed", "--json"], ["status"], ["notify", "test", "pager"]):
        cli(config, state, *args)
        out = capsys.readouterr()
        _assert_clean(out.out + out.err)
    assert cli(config, state, "alerts", "--failed", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["channel"] == "pager" and "json://***@127.0.0.1" in listed[0]["last_error"]
    _assert_clean(caplog.text)


def test_a_url_apprise_cannot_parse_is_reported_without_its_secrets(tmp_path: Path) -> None:
    channels = {"default": ["console://"], "desk": ["nosuchscheme://user:s3cret@mail.example.org/path-token",
                                                    "closed-t0ken"]}
    config = write_config(tmp_path / "config", channels, "http://127.0.0.1:9/unused.xml")
    with pytest.raises(ConfigError) as caught:
        load_validated(config)
    problems = "\n".join(caught.value.problems)
    _assert_clean(problems)
    assert "channel 'desk' URL #1" in problems and "nosuchscheme://***@mail.example.org" in problems
    assert "channel 'desk' URL #2: apprise does not understand the URL ***" in problems


@pytest.mark.parametrize(("url", "shown"), [
    ("tgram://123456789:AAHsecret/987654", "tgram://***"),
    ("mailtos://alerts:pw@smtp.example.com?to=desk@example.org", "mailtos://***@smtp.example.com"),
    ("json://127.0.0.1:8080/hook", "json://127.0.0.1:8080"),
    ("jsons://[::1]:8443/hook", "jsons://[::1]:8443"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#desk", "slack://***"),
    ("pover://userkey@apptoken", "pover://***@***"),
    ("console://", "console://"),
    ("just-a-token", "***"),
    ("apprise-config:/etc/monitor/apprise.yml", "apprise-config:/etc/monitor/apprise.yml"),
    ("apprise-config:https://u:p@config.example.com/apprise.yml", "apprise-config:https://***@config.example.com"),
])
def test_redact_keeps_scheme_and_a_real_host_only(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_scrub_masks_the_url_pieces_wherever_they_appear() -> None:
    url = "tgram://123456789:AAHsecret/987654"
    reason = ("Socket Exception: HTTPSConnectionPool(host='api.telegram.org', port=443): Max retries exceeded "
              "with url: /bot123456789:AAHsecret/sendMessage; see https://api.telegram.org/bot123456789:AAHsecret/x")
    cleaned = scrub(reason, [url])
    assert "AAHsecret" not in cleaned and "123456789" not in cleaned
    assert "host='api.telegram.org'" in cleaned and "with url: /***" in cleaned
    # percent-encoded credentials are masked as written and decoded
    assert scrub("login p@ss1 refused", ["mailtos://me:p%40ss1@smtp.example.com"]) == "login *** refused"
