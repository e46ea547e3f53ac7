"""The `monitor` command line. Global options: --config PATH (env MONITOR_CONFIG), --state DIR (env MONITOR_STATE)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
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


# -- run / demo ----------------------------------------------------------------------------------------

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


# -- inspection ------------------------------------------------------------------------------------------

def _open_store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .store import Store

    _, state_dir = _paths(args)
    return Store.open(state_dir)


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


def _register_delivery(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .cli_delivery import register  # alerts, alerts retry, notify test (delivery work)

    register(sub)


def _register_status(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help="last cycle, feed health, pending alerts, model, database size")
    p.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    store = _open_store(args)
    last = store.get_meta("last_cycle")
    rows, poll = store.feed_rows(), store.poll_rows()
    counts = store.counts()
    size = store.path.stat().st_size if store.path.exists() else 0
    from .cli_feeds import polling_status
    failing = [r for r in rows if r.in_config and r.state.error_count]
    print(f"database: {store.path} ({size / 1e6:.1f} MB): {counts['entries']} entries, {counts['stories']} stories")
    for line in polling_status(store, rows, poll):  # polling work: health flags, due feeds, size report
        print(line)
    for r in failing[:10]:
        print(f"  error: {r.state.name}: {r.state.last_error} ({r.state.error_count} in a row)")
    from .cli_delivery import delivery_status
    for line in delivery_status(store, _paths(args)[0]):  # delivery work: failed alerts, digests
        print(line)
    store.close()
    if last:
        print(f"last cycle: {last['started_at']} took {last['duration_s']}s: {last['feeds_polled']} feeds polled, "
              f"{last['entries_new']} new entries, {last['alerts_sent']} alerts sent")
    else:
        print("last cycle: never")
    _, state_dir = _paths(args)
    meta_path = state_dir / "model" / "metadata.json"
    if meta_path.exists():
        meta_text = meta_path.read_text()
        meta = json.loads(meta_text)
        # the same version string the classifier stamps on each verdict: a hash of its metadata
        version = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12]
        print(f"model: {version} trained {meta.get('trained_at', '?')}, threshold {meta.get('threshold', 0):.3f}, "
              f"{meta.get('n_examples', '?')} examples")
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


def _register_feeds(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .cli_feeds import register  # feeds list/add/remove/import/export and prune (polling work)

    register(sub)


def _register_watchlists(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .cli_watchlists import register  # check, replay, explain

    register(sub)


_COMMANDS = [_register_run, _register_demo, _register_watchlists, _register_feeds, _register_stories,
             _register_delivery,
             _register_status, _register_model]

if __name__ == "__main__":
    sys.exit(main())
