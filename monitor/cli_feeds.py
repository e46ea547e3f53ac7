"""`monitor feeds` (list with health), `feeds add/remove/import/export`, and `monitor prune`.

Feed edits change config/feeds.yaml (the contract), validated before the file is replaced; a running
daemon picks them up at its next tick (it watches the configuration files), no restart needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import load_config, load_feeds_file, parse_duration, resolve_config_path, resolve_state_dir
from .errors import ConfigError
from .feedsfile import NewFeed, add_items, item_index, remove_items, write_validated
from .opml import OpmlFeed, parse_opml, to_opml

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def register(sub: Sub) -> None:
    p = sub.add_parser("feeds", help="list feeds with their health; add, remove, import or export feeds")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_list)
    actions = p.add_subparsers(title="actions", metavar="ACTION")

    add = actions.add_parser("add", help="append a feed to feeds.yaml")
    add.add_argument("url", help="http(s):// URL, file:// URL or a path")
    add.add_argument("--name", help="display name (default: the host name)")
    add.add_argument("--tags", default="", help="comma-separated tags, e.g. cyber,government")
    add.add_argument("--interval", help="poll interval for this feed, e.g. 15m (default: adaptive)")
    add.set_defaults(handler=cmd_add)

    remove = actions.add_parser("remove", help="delete a feed from feeds.yaml (its history stays in the database)")
    remove.add_argument("feed", help="the feed's URL or name")
    remove.set_defaults(handler=cmd_remove)

    imp = actions.add_parser("import", help="append the feeds of an OPML file (skipping ones already there)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--tags", default="", help="comma-separated tags added to every imported feed")
    imp.set_defaults(handler=cmd_import)

    exp = actions.add_parser("export", help="write feeds.yaml as OPML (to standard output or --output)")
    exp.add_argument("-o", "--output", type=Path)
    exp.set_defaults(handler=cmd_export)

    prune = sub.add_parser("prune", help="drop old entry text (retention.entry_days), optimize; size report")
    prune.add_argument("--days", type=float, help="override retention.entry_days")
    prune.add_argument("--vacuum", action="store_true", help="also give freed space back to the file system")
    prune.set_defaults(handler=cmd_prune)


# -- editing -----------------------------------------------------------------------------------------------

def _feeds_path(args: argparse.Namespace) -> Path:
    """feeds.yaml as named by monitor.yaml (read loosely, so a broken watchlist does not block feed edits)."""
    import yaml

    config_path = resolve_config_path(args.config)
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{config_path}:1: cannot read: {exc}"]) from None
    name = data.get("feeds_file", "feeds.yaml") if isinstance(data, dict) else "feeds.yaml"
    return config_path.parent / str(name)


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _existing_urls(path: Path) -> set[str]:
    if not path.exists():
        return set()
    feeds, _ = load_feeds_file(path)
    return {f.url for f in feeds}


def _resolved(url: str, base: Path) -> str:
    return url if "://" in url else (base / url).resolve().as_uri()


def cmd_add(args: argparse.Namespace) -> int:
    path = _feeds_path(args)
    if args.interval:
        try:
            parse_duration(args.interval)
        except ValueError as exc:
            print(f"error: --interval: {exc}", file=sys.stderr)
            return 2
    if _resolved(args.url, path.parent) in _existing_urls(path):
        print(f"{args.url} is already in {path}", file=sys.stderr)
        return 1
    feed = NewFeed(url=args.url, name=args.name, tags=_tags(args.tags), interval=args.interval)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    write_validated(path, add_items(text, [feed]))
    print(f"added {args.name or args.url} to {path}; a running daemon picks it up at its next tick")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    path = _feeds_path(args)
    text = path.read_text(encoding="utf-8")
    indexes = item_index(text, args.feed, path.parent)
    if not indexes:
        print(f"no feed with URL or name {args.feed!r} in {path}", file=sys.stderr)
        return 1
    if len(indexes) > 1:
        print(f"{args.feed!r} names {len(indexes)} feeds; give the URL instead", file=sys.stderr)
        return 1
    try:
        new_text = remove_items(text, indexes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_validated(path, new_text)
    print(f"removed {args.feed} from {path}; its history stays in the database (`monitor feeds` shows it as "
          f"removed)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    path = _feeds_path(args)
    try:
        found = parse_opml(args.file.read_bytes(), str(args.file))
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    existing = _existing_urls(path)
    extra = _tags(args.tags)
    new = [NewFeed(url=f.url, name=f.name, tags=tuple(dict.fromkeys((*f.tags, *extra))))
           for f in found if _resolved(f.url, path.parent) not in existing]
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if new:
        write_validated(path, add_items(text, new))
    print(f"imported {len(new)} feeds from {args.file} into {path} ({len(found) - len(new)} already there)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    feeds, problems = load_feeds_file(_feeds_path(args))
    if problems:
        raise ConfigError(problems)
    text = to_opml([OpmlFeed(url=f.url, name=f.name, tags=f.tags) for f in feeds])
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {len(feeds)} feeds to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


# -- listing -----------------------------------------------------------------------------------------------

def _open_store(args: argparse.Namespace) -> Any:
    from .store import Store

    return Store.open(resolve_state_dir(args.state))


def feed_status(row: Any, poll: dict[str, Any]) -> str:
    if not row.in_config:
        return "removed"
    if not row.state.enabled:
        return "disabled"
    if row.last_polled_at is None:
        return "new"
    return "failing" if row.state.error_count else "ok"


def cmd_list(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        rows, poll = store.feed_rows(), store.poll_rows()
    finally:
        store.close()
    if args.json:
        print(json.dumps([_feed_json(r, poll.get(r.state.id, {})) for r in rows], indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no feeds polled yet (run `monitor run --once`)")
        return 0
    print(f"{'STATUS':<9} {'ERRS':>4} {'ENTRIES':>7} {'EVERY':>6}  {'LAST POLL':<17} FEED")
    for r in rows:
        info = poll.get(r.state.id, {})
        print(f"{feed_status(r, info):<9} {r.state.error_count:>4} {r.entry_count:>7} "
              f"{_every(info.get('interval_eff_s')):>6}  {_when(r.last_polled_at):<17} {r.state.name} <{r.state.url}>")
        if info.get("failing_since"):
            print(f"{'':<38} FLAGGED: failing since {info['failing_since'][:16].replace('T', ' ')} "
                  f"(poll.failing_after errors in a row; still retried with backoff)")
        if r.disabled_reason:
            print(f"{'':<38} disabled: {r.disabled_reason}")
        elif r.state.last_error:
            print(f"{'':<38} last error: {r.state.last_error}")
    return 0


def _feed_json(row: Any, info: dict[str, Any]) -> dict[str, Any]:
    return {"name": row.state.name, "url": row.state.url, "status": feed_status(row, info),
            "tags": list(row.state.tags), "error_count": row.state.error_count, "last_error": row.state.last_error,
            "last_status": row.last_status, "last_polled_at": _iso(row.last_polled_at),
            "last_ok_at": _iso(row.last_ok_at), "next_due_at": _iso(row.next_due_at), "entries": row.entry_count,
            "disabled_reason": row.disabled_reason, "flagged": bool(info.get("failing_since")),
            "failing_since": info.get("failing_since"),
            "interval_s": info.get("interval_eff_s"), "rate_per_h": info.get("rate_per_h"),
            "server_hint_s": info.get("hint_s"), "fetch_ms": info.get("fetch_ms"),
            "configured_url": info.get("config_url")}


def _every(seconds: float | None) -> str:
    if not seconds:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def polling_status(store: Any, rows: list[Any], poll: dict[int, dict[str, Any]]) -> list[str]:
    """`monitor status` lines about feed health and the database size (polling work)."""
    from .retention import describe

    counts = store.feed_health_counts()
    due = store.count_due(datetime.now(UTC))
    lines = [f"feeds: {counts['configured']} configured, {counts['erroring']} failing ({counts['failing']} flagged "
             f"after poll.failing_after errors in a row), {counts['disabled']} disabled; {due} due now"]
    for r in rows:
        info = poll.get(r.state.id, {})
        if r.in_config and (info.get("failing_since") or feed_status(r, info) == "disabled"):
            since = (info.get("failing_since") or "")[:16].replace("T", " ")
            what = f"FAILING since {since}" if since else "DISABLED"
            lines.append(f"  {what}: {r.state.name}: {r.disabled_reason or r.state.last_error}")
    lines.extend(describe(store.size_report()))
    return lines


# -- retention -----------------------------------------------------------------------------------------------

def cmd_prune(args: argparse.Namespace) -> int:
    from .retention import describe, prune

    days = args.days
    if days is None:
        days = load_config(resolve_config_path(args.config)).settings.retention.entry_days
    store = _open_store(args)
    try:
        report = prune(store, days, datetime.now(UTC), vacuum=args.vacuum)
    finally:
        store.close()
    print(f"pruned the text of {report.pruned} entries older than {days:g} days" if days else "retention is off")
    print("before: " + "; ".join(describe(report.before)))
    print("after:  " + "; ".join(describe(report.after)))
    if not args.vacuum and report.after.free_bytes:
        print("(run with --vacuum to give free space back to the file system)")
    return 0
