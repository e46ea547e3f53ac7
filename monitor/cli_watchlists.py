"""`monitor check | replay | explain`: watchlists from the command line.

- check: validate every configuration file and run the watchlists' `tests:` examples (scored with the
  trained model when a watchlist uses the classifier and a model exists in the state directory).
- replay: what a (possibly edited or new) watchlist file would have alerted over stored stories, and the
  difference from the configured watchlist of the same name. Sends nothing, writes nothing.
- explain: for one stored story, every watchlist's conditions and query clauses, matched or not, and the
  classifier's stored verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .config import Config, load_config, parse_duration, resolve_config_path, resolve_state_dir
from .errors import MonitorError
from .models import StoryView
from .query import ClauseResult, render_explanation
from .watchlists import (
    CompiledWatchlist,
    Scorer,
    compile_all,
    compile_watchlist,
    load_watchlist_file,
    prepare,
    replay,
    run_examples,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("check", help="validate the configuration and run watchlist tests")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("replay", help="what a watchlist file would have alerted over stored stories (sends nothing)")
    p.add_argument("watchlist", type=Path, help="a watchlist file: an edited copy, a new one, or a configured one")
    p.add_argument("--since", default="30d", help="stories first seen within this period, e.g. 7d, 48h, or "
                                                  "'all' (default 30d)")
    p.add_argument("--include-backlog", action="store_true",
                   help="also stories stored as backlog (older than alerts.max_age when first seen, never alerted)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_replay)

    p = sub.add_parser("explain", help="why a stored story did or did not match each watchlist")
    p.add_argument("story", type=int, help="story id (see `monitor stories` or `monitor replay`)")
    p.add_argument("-w", "--watchlist", action="append", default=[], metavar="NAME",
                   help="only this configured watchlist (repeatable)")
    p.add_argument("--file", action="append", default=[], type=Path, metavar="WATCHLIST.yaml",
                   help="explain against this watchlist file instead (repeatable)")
    p.set_defaults(handler=cmd_explain)


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    return resolve_config_path(args.config), resolve_state_dir(args.state)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


# ---- check ----------------------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    from .app import load_validated

    config_path, state_dir = _paths(args)
    config, watchlists = load_validated(config_path)
    every = compile_all(config.watchlists, include_disabled=True)  # tests of disabled watchlists run too
    failures, notes, ran = _run_all_examples(config, every, state_dir)
    enabled = sum(1 for f in config.feeds if f.enabled)
    print(f"{config.path}: OK")
    print(f"  feeds: {len(config.feeds)} ({enabled} enabled)")
    print(f"  watchlists: {', '.join(w.name for w in watchlists) or 'none'}")
    channels = ", ".join(f"{name} ({len(urls)} URL{_plural(len(urls))})" for name, urls in config.channels.items())
    print(f"  channels: {channels}")
    max_age = config.settings.alerts.max_age
    print(f"  alerts.max_age: {'none' if max_age is None else f'{max_age / 3600:g}h'}")
    print(f"  watchlist tests: {ran} example{_plural(ran)} run, {len(failures)} failed")
    for note in notes:
        print(f"  note: {note}")
    if failures:
        print(f"watchlist tests: {len(failures)} failed", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


def _run_all_examples(config: Config, watchlists: list[CompiledWatchlist],
                      state_dir: Path) -> tuple[list[Any], list[str], int]:
    """(failures, notes, examples run); classifier watchlists are scored with the trained model if any."""
    needing = [w for w in watchlists if w.uses_classifier and w.config.spec.tests is not None]
    scorer = _load_scorer(config, state_dir) if needing else None
    failures: list[Any] = []
    notes: list[str] = []
    ran = 0
    for w in watchlists:
        tests = w.config.spec.tests
        if tests is None:
            continue
        if w.uses_classifier and scorer is None:
            notes.append(f"{w.config.path}: tests of '{w.name}' skipped: it uses the classifier and there is "
                         f"no usable trained model in {state_dir} (run `monitor train`)")
            continue
        if w.uses_classifier and not config.settings.classifier.enabled:
            notes.append(f"{w.config.path}: '{w.name}' uses the classifier, which is disabled in monitor.yaml: "
                         f"it will not match anything")
        failures.extend(run_examples(w, scorer if w.uses_classifier else None))
        ran += len(tests.match) + len(tests.no_match)
    return failures, notes, ran


def _load_scorer(config: Config, state_dir: Path) -> Scorer | None:
    """The trained model when one exists (never trains: `check` must stay quick and side-effect free)."""
    if not (state_dir / "model" / "metadata.json").exists():
        return None
    from . import classify  # scikit-learn loads only when a model is there to use

    try:
        classifier = classify.load(state_dir)
    except MonitorError:
        return None
    if classifier is not None and config.settings.classifier.threshold is not None:
        classifier.model.threshold = config.settings.classifier.threshold
    return classifier


# ---- replay ---------------------------------------------------------------------------------------

def cmd_replay(args: argparse.Namespace) -> int:
    from .store import Store

    config_path, state_dir = _paths(args)
    config = load_config(config_path)
    candidate = compile_watchlist(load_watchlist_file(args.watchlist, config))
    baseline, note = _baseline(config, candidate)
    since = _since(args.since)
    store = Store.open(state_dir)
    try:
        rows = list(store.stories_since(since))
    finally:
        store.close()
    backlog = sum(1 for r in rows if not r.alertable)
    views = [r.view for r in rows if r.alertable or args.include_backlog]
    result = replay(candidate, baseline, views)
    if args.json:
        print(json.dumps(_replay_json(candidate, baseline, note, since, views, result), indent=2, ensure_ascii=False))
        return 0
    window = f"since {_when(since)} UTC" if since else "all stored"
    print(f"replay of '{candidate.name}' ({args.watchlist}) over {len(views)} stor{'y' if len(views) == 1 else 'ies'} "
          f"first seen {window}" + (f"; {backlog} backlog stories skipped" if backlog and not args.include_backlog
                                    else ""))
    unscored = sum(1 for v in views if v.verdict is None)
    if candidate.uses_classifier and unscored:
        print(f"note: {unscored} of them have no classifier verdict; score and subtopic conditions fail on them")
    print(f"{len(result.matched)} would have alerted:")
    for view in result.matched:
        _print_story(view, "  ")
    if baseline is None:
        print(note)
        return 0
    unchanged = len(result.matched) - len(result.added)
    print(f"compared with the configured '{baseline.name}' ({baseline.config.path}): {len(result.added)} added, "
          f"{len(result.removed)} removed, {unchanged} unchanged")
    for view in result.added:
        _print_story(view, "+ ")
    for view in result.removed:
        _print_story(view, "- ")
    return 0


def _since(text: str) -> datetime | None:
    if text.strip().lower() == "all":
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise MonitorError(f"--since: {exc}") from None
    return datetime.now(UTC) - timedelta(seconds=seconds)


def _baseline(config: Config, candidate: CompiledWatchlist) -> tuple[CompiledWatchlist | None, str]:
    """The configured watchlist with the candidate's name, or None and a note saying why there is none."""
    current = next((w for w in config.watchlists if w.name == candidate.name), None)
    if current is None:
        return None, f"no configured watchlist is named '{candidate.name}': every story above would be new"
    if current.path.resolve() == candidate.config.path.resolve():
        return None, (f"{current.path} is the configured version itself; replay an edited copy to see the "
                      f"difference")
    return compile_watchlist(current), ""


def _print_story(view: StoryView, prefix: str) -> None:
    print(f"{prefix}#{view.id} {_when(view.published)} [{view.feed_name}] {view.title}")
    print(f"{' ' * len(prefix)}    {view.link}")


def _story_json(view: StoryView) -> dict[str, Any]:
    return {"id": view.id, "title": view.title, "source": view.feed_name, "published": view.published.isoformat(),
            "link": view.link, "score": view.verdict.score if view.verdict else None}


def _replay_json(candidate: CompiledWatchlist, baseline: CompiledWatchlist | None, note: str,
                 since: datetime | None, views: list[StoryView], result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"watchlist": candidate.name, "file": str(candidate.config.path),
                           "since": since.isoformat() if since else None, "stories_examined": len(views),
                           "matched": [_story_json(v) for v in result.matched], "baseline": None}
    if baseline is not None:
        out["baseline"] = {"file": str(baseline.config.path), "added": [_story_json(v) for v in result.added],
                           "removed": [_story_json(v) for v in result.removed]}
    else:
        out["note"] = note
    return out


# ---- explain --------------------------------------------------------------------------------------

def cmd_explain(args: argparse.Namespace) -> int:
    from .store import Store

    config_path, state_dir = _paths(args)
    config = load_config(config_path)
    if args.file:
        watchlists = [compile_watchlist(load_watchlist_file(path, config)) for path in args.file]
    else:
        watchlists = _selected(compile_all(config.watchlists, include_disabled=True), args.watchlist)
    store = Store.open(state_dir)
    try:
        row = store.story(args.story)
        recorded = store.story_matches(args.story) if row is not None else {}
    finally:
        store.close()
    if row is None:
        raise MonitorError(f"no story #{args.story} in {state_dir} (see `monitor stories`)")
    print("\n".join(explain_story(row.view, watchlists, recorded, row.alertable)))
    return 0


def _selected(watchlists: list[CompiledWatchlist], names: list[str]) -> list[CompiledWatchlist]:
    if not names:
        return watchlists
    known = {w.name: w for w in watchlists}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MonitorError(f"unknown watchlist {', '.join(unknown)} (configured: {', '.join(sorted(known))})")
    return [known[n] for n in names]


def explain_story(view: StoryView, watchlists: list[CompiledWatchlist], recorded: dict[str, datetime | None],
                  alertable: bool = True) -> list[str]:
    """The text of `monitor explain`: the story, its verdict, then each watchlist's conditions."""
    others = [s for s in view.sources if s != view.feed_name]
    lines = [f"story #{view.id}: {view.title}",
             f"  {view.feed_name}" + (f" (also: {', '.join(others)})" if others else "") +
             f", published {_when(view.published)} UTC", f"  {view.link}"]
    if not alertable:
        lines.append("  stored as backlog (older than alerts.max_age when first seen): it never alerts")
    lines += _verdict_lines(view)
    doc = prepare(view)  # once, for every watchlist
    for w in watchlists:
        matched, results = w.evaluate(doc)
        state = "MATCH" if matched else "no match"
        flags = [] if w.config.spec.enabled else ["disabled"]
        if w.name in recorded:
            flags.append(f"alerted {_when(recorded[w.name])}")
        lines.append("")
        lines.append(f"{w.name}: {state}" + (f" ({', '.join(flags)})" if flags else "") + f"  [{w.config.path}]")
        for r in results:
            lines.append(f"  {'+' if r.passed else '-'} {r.label}: {r.detail}" if r.detail else
                         f"  {'+' if r.passed else '-'} {r.label}")
            if r.label == "query" and w.query is not None:
                tree = render_explanation(compact_clauses(w.query.explain(doc)))
                lines.extend("      " + line for line in tree.splitlines())
    return lines


def compact_clauses(results: list[ClauseResult]) -> list[ClauseResult]:
    """Leave out what says nothing: the members of an entity that did not match, and everything under a NOT
    that held (nothing it excludes was found). The whole query is shown by name when it is long."""
    out: list[ClauseResult] = []
    hide_below: int | None = None
    for r in results:
        if hide_below is not None and r.depth > hide_below:
            if not (r.kind == "term" and r.matched and r.depth == hide_below + 1 and out[-1].kind == "entity"):
                continue
        else:
            hide_below = None
        if r.kind == "entity" or (r.kind == "not" and r.matched):
            hide_below = r.depth
        out.append(replace(r, source="(the whole query)") if r.depth == 0 and len(r.source) > 80 else r)
    return out


def _verdict_lines(view: StoryView) -> list[str]:
    verdict = view.verdict
    if verdict is None:
        return ["classifier: no verdict stored (the classifier was off or had no model when the story came in)"]
    bar = f" (model threshold {verdict.threshold:.2f})" if verdict.threshold is not None else ""
    subtopics = ", ".join(verdict.subtopics) or "none"
    terms = ", ".join(verdict.top_terms) or "none"
    return [f"classifier: score {verdict.score:.2f}{bar}; subtopics: {subtopics}", f"  top terms: {terms}"]


def _plural(count: int) -> str:
    return "" if count == 1 else "s"
