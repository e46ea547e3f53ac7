"""`monitor train | evaluate | label | review`: the relevance model from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .config import parse_duration, resolve_config_path, resolve_state_dir
from .errors import MonitorError


def _progress(message: str) -> None:
    print(f"[monitor] {message}", file=sys.stderr, flush=True)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train the relevance model from the shipped corpus and your labels")
    p.add_argument("--background", action="store_true",
                   help="also learn from your stored stories as weak negatives (more precision, less recall)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("evaluate", help="precision, recall, F1, PR-AUC; writes report.json and a PR curve PNG")
    p.add_argument("--data", type=Path, help="a JSONL file of {title, summary, label} records "
                                             "(default: the corpus's held-out split)")
    p.add_argument("--threshold", type=float, help="threshold to evaluate at (default: the model's)")
    p.add_argument("--out", type=Path, help="directory for report.json and pr_curve.png (default STATE/eval)")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("label", help="teach the model: mark a story relevant or irrelevant")
    p.add_argument("story", type=int, help="story id (see `monitor stories` or `monitor review`)")
    p.add_argument("verdict", choices=["relevant", "irrelevant"])
    p.add_argument("--subtopic", action="append", default=[], help="subtopic of a relevant story (repeatable)")
    p.set_defaults(handler=cmd_label)

    p = sub.add_parser("review", help="recent stories the model is least sure about, to label")
    p.add_argument("--limit", type=int, default=15)
    p.add_argument("--since", default="7d", help="look at stories first seen within this period (default 7d)")
    p.set_defaults(handler=cmd_review)


def _state(args: argparse.Namespace) -> Path:
    return resolve_state_dir(args.state)


def _threshold_override(args: argparse.Namespace) -> float | None:
    """classifier.threshold from monitor.yaml, when the configuration is readable and sets one."""
    try:
        from .config import load_config

        return load_config(resolve_config_path(args.config)).settings.classifier.threshold
    except MonitorError:
        return None


def cmd_train(args: argparse.Namespace) -> int:
    from .app import train_and_save
    from .store import Store

    store = Store.open(_state(args))
    try:
        classifier = train_and_save(_state(args), store, progress=True, background=args.background)
    finally:
        store.close()
    if classifier is None:
        print("error: the model was trained but cannot be loaded back", file=sys.stderr)
        return 1
    meta = classifier.metadata
    print(f"model {classifier.version} saved in {_state(args) / 'model'}; threshold {classifier.threshold:.3f}")
    held = meta.get("held_out") or {}
    if held:
        print("held-out split: " + ", ".join(f"{k} {v}" for k, v in held.items() if not isinstance(v, dict)))
    return 0


def _load_or_train(args: argparse.Namespace) -> Any:
    from . import classify
    from .app import train_and_save
    from .store import Store

    classifier = classify.load(_state(args))
    if classifier is None:
        _progress("no usable model: training one first")
        store = Store.open(_state(args))
        try:
            classifier = train_and_save(_state(args), store, progress=True)
        finally:
            store.close()
    if classifier is None:
        raise MonitorError("no model could be trained")
    return classifier


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    classifier = _load_or_train(args)
    records = _read_jsonl(args.data) if args.data else None
    out = args.out or _state(args) / "eval"
    threshold = args.threshold if args.threshold is not None else _threshold_override(args)
    _progress(f"scoring {len(records) if records is not None else 'the held-out'} records")
    report = evaluate(classifier, records, threshold=threshold, out_dir=out)
    print(f"evaluated on {report.source}: {report.n} records, {report.n_positive} relevant")
    print(f"at threshold {report.threshold:.3f}: precision {report.precision:.3f}  recall {report.recall:.3f}  "
          f"F1 {report.f1:.3f}  ({report.alerts} would alert)")
    print(f"PR-AUC {report.pr_auc if report.pr_auc is not None else 'n/a'}; best F1 {report.best_f1:.3f} at "
          f"threshold {report.best_f1_threshold:.3f}")
    if report.subtopics:
        print(f"{'subtopic':<24} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>5}")
        for name, fig in report.subtopics.items():
            print(f"{name:<24} {fig.precision:>6.3f} {fig.recall:>6.3f} {fig.f1:>6.3f} {fig.support:>5}")
    print(f"report: {report.report_path}\ncurve:  {report.curve_path}")
    return 0


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise MonitorError(f"{path}:{number}: not JSON: {exc}") from exc
        if "label" not in record or not ({"title", "summary"} & record.keys()):
            raise MonitorError(f"{path}:{number}: each record needs 'title' (or 'summary') and 'label'")
        records.append(record)
    return records


def cmd_label(args: argparse.Namespace) -> int:
    from .classify import SUBTOPICS
    from .store import Store

    unknown = [s for s in args.subtopic if s not in SUBTOPICS]
    if unknown:
        print(f"error: unknown subtopic {', '.join(unknown)} (known: {', '.join(SUBTOPICS)})", file=sys.stderr)
        return 2
    store = Store.open(_state(args))
    try:
        row = store.story(args.story)
        if row is None:
            print(f"error: no story #{args.story}", file=sys.stderr)
            return 1
        label = 1 if args.verdict == "relevant" else 0
        store.add_label(args.story, label, args.subtopic if label else [], datetime.now(UTC))
        total = len(store.labels())
    finally:
        store.close()
    print(f"story #{args.story} labeled {args.verdict}: {row.view.title}")
    print(f"{total} label{'s' if total != 1 else ''} stored; run `monitor train` to retrain with them")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from . import classify
    from .store import Store

    store = Store.open(_state(args))
    try:
        since = datetime.now(UTC) - timedelta(seconds=parse_duration(args.since))
        labeled = {r["story_id"] for r in store.labels()}
        rows = [r for r in store.recent_stories(limit=5000, since=since) if r.view.id not in labeled]
    finally:
        store.close()
    if not rows:
        print("no unlabeled stories in that period")
        return 0
    classifier = _load_or_train(args)
    picks = classify.uncertain(classifier, [(r.view.title, r.view.summary) for r in rows], k=args.limit)
    print(f"{len(picks)} stories the model is least sure about (threshold {classifier.threshold:.2f}); label them "
          f"with `monitor label ID relevant|irrelevant`:")
    for index, score in picks:
        view = rows[index].view
        print(f"#{view.id:<6} score {score:.2f}  [{view.feed_name}] {view.title}")
        print(f"        {view.link}")
    return 0
