"""`monitor alerts`, `monitor alerts retry` and `monitor notify test`: the outbox from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import Config, load_config, resolve_config_path, resolve_state_dir
from .errors import ConfigError
from .store import AlertRow, Store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("alerts", help="recent alerts with their delivery state; "
                                      "`alerts retry` re-queues failed ones")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--pending", action="store_true",
                       help="only alerts waiting to be sent (held, in backoff, or waiting for a digest)")
    group.add_argument("--failed", action="store_true", help="only alerts that were given up on")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("action", nargs="?", choices=["retry"], help="retry ID... or --all-failed")
    p.add_argument("ids", nargs="*", type=int)
    p.add_argument("--all-failed", action="store_true", help="with `retry`: re-queue every failed alert")
    p.set_defaults(handler=cmd_alerts)

    p = sub.add_parser("notify", help="`notify test [CHANNEL]`: send a test message to a channel's URLs")
    p.add_argument("action", choices=["test"])
    p.add_argument("channel", nargs="?", help="channel name (default: every channel)")
    p.set_defaults(handler=cmd_notify)


# -- alerts ------------------------------------------------------------------------------------------------

def cmd_alerts(args: argparse.Namespace) -> int:
    store = Store.open(resolve_state_dir(args.state))
    try:
        if args.action == "retry":
            if not args.ids and not args.all_failed:
                print("usage: monitor alerts retry ID [ID...] | --all-failed", file=sys.stderr)
                return 2
            count = store.retry_alerts(None if args.all_failed else args.ids, datetime.now(UTC))
            print(f"re-queued {count} alert{_s(count)}; they go out on the next cycle")
            return 0
        state = "pending" if args.pending else "failed" if args.failed else None
        rows = store.alerts(state=state, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([_alert_json(r) for r in rows], indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no alerts" + (f" {state}" if state else ""))
    for r in rows:
        a = r.alert
        print(f"#{a.id} {_state(r):<16} {a.channel:<10} {a.watchlist:<24} {a.title}")
        print(f"    {a.link}")
        if a.last_error and a.state != "sent":
            print(f"    attempts {a.attempts}, last error: {a.last_error}")
    return 0


def _state(row: AlertRow) -> str:
    """'sent', 'failed', 'pending', 'pending (digest)', 'pending (held)', 'sent (digest)'."""
    a = row.alert
    if a.state == "pending" and row.mode == "digest":
        return "pending (digest)"
    if a.state == "pending" and row.note == "quiet hours":
        return "pending (held)"
    if a.state == "sent" and row.digest_id is not None:
        return "sent (digest)"
    return a.state


def _alert_json(r: AlertRow) -> dict[str, Any]:
    a = r.alert
    return {"id": a.id, "story_id": a.story_id, "watchlist": a.watchlist, "channel": a.channel,
            "state": a.state, "mode": r.mode, "urgent": r.urgent, "note": r.note, "digest_id": r.digest_id,
            "attempts": a.attempts, "title": a.title, "link": a.link, "last_error": a.last_error,
            "created_at": _iso(a.created_at), "next_attempt_at": _iso(a.next_attempt_at),
            "sent_at": _iso(r.sent_at), "failed_at": _iso(r.failed_at)}


# -- status ------------------------------------------------------------------------------------------------

def delivery_status(store: Store, config_path: Path | None = None) -> list[str]:
    """Lines for `monitor status`: alert counts, the latest failed alerts, next digest times."""
    counts, waiting = store.count_alerts(), store.waiting_for_digest()
    lines = ["alerts: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("pending", "sent", "failed"))
             + (f" ({waiting} waiting for a digest)" if waiting else "")]
    for row in store.alerts(state="failed", limit=5):
        a = row.alert
        lines.append(f"  failed: #{a.id} to {a.channel}: {a.title} ({a.last_error})")
    if counts.get("failed", 0) > 5:
        lines.append("  ... see `monitor alerts --failed`; `monitor alerts retry --all-failed` re-queues")
    config = _try_config(config_path)
    if config is None:
        return lines
    from .delivery import ChannelPolicy, digest_due, next_digest

    clock = store.digest_clock()
    now = datetime.now(UTC)
    for name, spec in config.channel_specs.items():
        policy = ChannelPolicy.from_spec(name, spec, config.zone)
        queued = store.waiting_for_digest(name)
        if name not in clock or (policy.mode != "digest" and not queued):
            continue
        due = digest_due(clock[name], now, policy) or next_digest(clock[name], policy)
        local = due.astimezone(config.zone).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  digest for {name}: next at {local} {config.zone.key}, "
                     f"{queued} alert{_s(queued)} waiting")
    return lines


def _try_config(config_path: Path | None) -> Config | None:
    if config_path is None:
        return None
    try:
        return load_config(config_path)
    except ConfigError:
        return None


# -- notify test -------------------------------------------------------------------------------------------

def cmd_notify(args: argparse.Namespace) -> int:
    from .notify import Message, redact, send, url_format

    config = load_config(resolve_config_path(args.config))
    specs = config.channel_specs
    if args.channel and args.channel not in specs:
        print(f"unknown channel '{args.channel}' (defined: {', '.join(sorted(specs))})", file=sys.stderr)
        return 2
    failed = 0
    for name in [args.channel] if args.channel else list(specs):
        spec = specs[name]
        for url in spec.urls:
            fmt = url_format(url, spec.format)
            body = _TEST_BODY[fmt].format(channel=name)
            result = send(url, Message(title=f"monitor test message ({name})", body=body, body_format=fmt),
                          timeout=config.settings.alerts.send_timeout)
            if result.ok:
                print(f"{name}: {redact(url)}: ok ({fmt})")
            else:
                failed += 1
                print(f"{name}: {redact(url)}: FAILED: {result.reason}")
    return 1 if failed else 0


_TEST_BODY = {
    "text": "This is a test from monitor: channel '{channel}' works.\n",
    "markdown": "This is a **test** from monitor: channel `{channel}` works.\n",
    "html": "<p>This is a <b>test</b> from monitor: channel <code>{channel}</code> works.</p>\n",
}


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
