"""The `monitor` command line. Global options: --config PATH (env MONITOR_CONFIG), --state DIR (env MONITOR_STATE)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .config import resolve_config_path, resolve_state_dir
from .errors import ConfigError, MonitorError

log = logging.getLogger("monitor")

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"configuration error ({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}):",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitor", description="Alerts on US-China technology and security news.")
    parser.add_argument("--config", help="settings file (default config/monitor.yaml, env MONITOR_CONFIG)")
    parser.add_argument("--state", help="state directory (default state/, env MONITOR_STATE)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in _COMMANDS:
        register(sub)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "apscheduler", "apprise"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose < 2 else logging.DEBUG)


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    return resolve_config_path(args.config), resolve_state_dir(args.state)


def _apply_log_level(level: str, args: argparse.Namespace) -> None:
    if not args.verbose and not args.quiet:
        logging.getLogger().setLevel(level)


# -- run / demo / check ----------------------------------------------------------------------------------

def _register_run(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run the daemon (or one cycle with --once)")
    p.add_argument("--once", action="store_true", help="poll every feed once, process, send, and exit")
    p.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    config_path, state_dir = _paths(args)
    if not args.once:
        from .daemon import run_daemon

        run_daemon(config_path, state_dir)
        return 0
    from .app import open_app

    app = open_app(config_path, state_dir, progress=True)
    _apply_log_level(app.config.settings.log_level, args)
    try:
        stats = app.pipeline.run_cycle(all_feeds=True)
    finally:
        app.close()
    print(f"polled {stats.feeds_polled} feeds ({stats.feeds_ok} ok, {stats.feeds_not_modified} unchanged, "
          f"{stats.feeds_failed} failed); {stats.entries_new} new entries, {stats.stories_new} new stories; "
          f"alerts: {stats.alerts_queued} queued, {stats.alerts_sent} sent, {stats.alerts_pending} pending")
    return 0


def _register_demo(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the whole pipeline offline on sample feeds shipped with monitor")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo()


def _register_check(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("check", help="validate the configuration and run watchlist tests")
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from .app import load_validated
    from .watchlists import run_examples

    config_path, _ = _paths(args)
    config, watchlists = load_validated(config_path)
    failures = [failure for w in watchlists if not _uses_classifier(w) for failure in run_examples(w)]
    enabled = sum(1 for f in config.feeds if f.enabled)
    print(f"{config.path}: OK")
    print(f"  feeds: {len(config.feeds)} ({enabled} enabled)")
    print(f"  watchlists: {', '.join(w.name for w in watchlists) or 'none'}")
    channels = ", ".join(f"{name} ({len(urls)} URL{_plural(len(urls))})" for name, urls in config.channels.items())
    print(f"  channels: {channels}")
    max_age = config.settings.alerts.max_age
    print(f"  alerts.max_age: {'none' if max_age is None else f'{max_age / 3600:g}h'}")
    if failures:
        print(f"watchlist tests: {len(failures)} failed", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


def _uses_classifier(watchlist: object) -> bool:
    from .app import needs_scorer

    return needs_scorer([watchlist])  # type: ignore[list-item]


# -- inspection ------------------------------------------------------------------------------------------

def _open_store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .store import Store

    _, state_dir = _paths(args)
    return Store.open(state_dir)


def _register_feeds(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("feeds", help="list feeds with their health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_feeds)


def cmd_feeds(args: argparse.Namespace) -> int:
    store = _open_store(args)
    rows = store.feed_rows()
    store.close()
    if args.json:
        print(json.dumps([_feed_json(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no feeds polled yet (run `monitor run --once`)")
        return 0
    print(f"{'STATUS':<9} {'ERRS':>4} {'ENTRIES':>7}  {'LAST POLL':<17} FEED")
    for r in rows:
        print(f"{_feed_status(r):<9} {r.state.error_count:>4} {r.entry_count:>7}  {_when(r.last_polled_at):<17} "
              f"{r.state.name} <{r.state.url}>")
        if r.state.last_error:
            print(f"{'':<9} {'':>4} {'':>7}  {'':<17} last error: {r.state.last_error}")
    return 0


def _feed_status(row) -> str:  # type: ignore[no-untyped-def]
    if not row.in_config:
        return "removed"
    if not row.state.enabled:
        return "disabled"
    if row.last_polled_at is None:
        return "new"
    return "failing" if row.state.error_count else "ok"


def _feed_json(row) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {"name": row.state.name, "url": row.state.url, "status": _feed_status(row), "tags": list(row.state.tags),
            "error_count": row.state.error_count, "last_error": row.state.last_error, "last_status": row.last_status,
            "last_polled_at": _iso(row.last_polled_at), "last_ok_at": _iso(row.last_ok_at),
            "next_due_at": _iso(row.next_due_at), "entries": row.entry_count, "disabled_reason": row.disabled_reason}


def _register_stories(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("stories", help="recent stories, with the outlets that reported each")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--json", action="store_true", help="machine-readable output, with members")
    p.set_defaults(handler=cmd_stories)


def cmd_stories(args: argparse.Namespace) -> int:
    store = _open_store(args)
    rows = store.recent_stories(limit=args.limit)
    if args.json:
        out = [_story_json(row, store.story_members(row.view.id)) for row in rows]
        store.close()
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    store.close()
    for row in rows:
        v = row.view
        score = f" score {v.verdict.score:.2f}" if v.verdict else ""
        others = [s for s in v.sources if s != v.feed_name]
        also = f" — also reported by {len(others)} outlet{'s' if len(others) != 1 else ''}" if others else ""
        print(f"#{v.id} {_when(v.published)} [{v.feed_name}]{score} {v.title}{also}")
        print(f"    {v.link}")
    if not rows:
        print("no stories yet")
    return 0


def _story_json(row, members) -> dict:  # type: ignore[no-untyped-def,type-arg]
    v = row.view
    return {"id": v.id, "title": v.title, "link": v.link, "source": v.feed_name, "sources": list(v.sources),
            "size": row.size, "published": _iso(v.published), "first_seen": _iso(row.first_seen_at),
            "last_seen": _iso(row.last_seen_at), "alertable": row.alertable,
            "score": v.verdict.score if v.verdict else None,
            "subtopics": list(v.verdict.subtopics) if v.verdict else [],
            "top_terms": list(v.verdict.top_terms) if v.verdict else [],
            "members": [{"title": m["title"], "link": m["link"], "feed": m["feed"], "similarity": m["similarity"],
                         "first_seen": m["first_seen_at"]} for m in members]}


def _register_alerts(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("alerts", help="recent alerts with their delivery state; `alerts retry` re-queues failed ones")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--pending", action="store_true", help="only alerts waiting to be sent")
    group.add_argument("--failed", action="store_true", help="only alerts that gave up")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.add_argument("action", nargs="?", choices=["retry"], help="retry ID... or --all-failed")
    p.add_argument("ids", nargs="*", type=int)
    p.add_argument("--all-failed", action="store_true", help="with `retry`: re-queue every failed alert")
    p.set_defaults(handler=cmd_alerts)


def cmd_alerts(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        if args.action == "retry":
            if not args.ids and not args.all_failed:
                print("usage: monitor alerts retry ID [ID...] | --all-failed", file=sys.stderr)
                return 2
            count = store.retry_alerts(None if args.all_failed else args.ids, datetime.now(timezone.utc))
            print(f"re-queued {count} alert{'s' if count != 1 else ''}; they go out on the next cycle")
            return 0
        state = "pending" if args.pending else "failed" if args.failed else None
        rows = store.alerts(state=state, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([{"id": r.alert.id, "story_id": r.alert.story_id, "watchlist": r.alert.watchlist,
                           "channel": r.alert.channel, "state": r.alert.state, "attempts": r.alert.attempts,
                           "title": r.alert.title, "link": r.alert.link, "last_error": r.alert.last_error,
                           "created_at": _iso(r.alert.created_at), "sent_at": _iso(r.sent_at)} for r in rows],
                         indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no alerts" + (f" {state}" if state else ""))
    for r in rows:
        a = r.alert
        print(f"#{a.id} {a.state:<7} {a.channel:<10} {a.watchlist:<24} {a.title}")
        print(f"    {a.link}")
        if a.last_error and a.state != "sent":
            print(f"    attempts {a.attempts}, last error: {a.last_error}")
    return 0


def _register_status(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help="last cycle, feed health, pending alerts, model, database size")
    p.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    store = _open_store(args)
    last = store.get_meta("last_cycle")
    rows = store.feed_rows()
    counts, alert_counts = store.counts(), store.count_alerts()
    size = store.path.stat().st_size if store.path.exists() else 0
    store.close()
    failing = [r for r in rows if r.in_config and r.state.error_count]
    print(f"database: {store.path} ({size / 1e6:.1f} MB): {counts['entries']} entries, {counts['stories']} stories")
    print(f"feeds: {sum(1 for r in rows if r.in_config)} configured, {len(failing)} failing")
    for r in failing[:10]:
        print(f"  failing: {r.state.name}: {r.state.last_error} ({r.state.error_count} in a row)")
    print("alerts: " + ", ".join(f"{alert_counts.get(s, 0)} {s}" for s in ("pending", "sent", "failed")))
    if last:
        print(f"last cycle: {last['started_at']} took {last['duration_s']}s: {last['feeds_polled']} feeds polled, "
              f"{last['entries_new']} new entries, {last['alerts_sent']} alerts sent")
    else:
        print("last cycle: never")
    _, state_dir = _paths(args)
    meta_path = state_dir / "model" / "metadata.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        print(f"model: {meta.get('version', '?')} trained {meta.get('trained_at', '?')}")
    else:
        print("model: none trained yet")
    return 0


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _register_model(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .cli_model import register

    register(sub)


_COMMANDS = [_register_run, _register_demo, _register_check, _register_feeds, _register_stories, _register_alerts,
             _register_status, _register_model]

if __name__ == "__main__":
    sys.exit(main())
