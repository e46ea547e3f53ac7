"""Watchlists: compiled rules that decide whether a story alerts, and why. Pure.

A watchlist's conditions are combined with AND: keyword rules (any/all/none), the query language,
classifier conditions (min_score, subtopics) and source filters. Every present condition must hold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import WatchlistConfig, routes_of
from .errors import ConfigError, QuerySyntaxError
from .models import Match, Route, StoryView

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()


def term_pattern(term: str) -> re.Pattern[str]:
    """Case-insensitive, word-bounded pattern for a term or phrase; CJK terms match as substrings."""
    words = fold(term).split()
    if not words:
        raise ValueError("empty term")
    body = r"[\s\-_/]+".join(re.escape(word) for word in words)
    if _CJK.search(term):
        return re.compile(body)
    return re.compile(rf"(?<!\w){body}(?!\w)")


@dataclass(frozen=True)
class Check:
    """One condition of a watchlist: a label for explanations and a predicate over the story."""

    label: str
    test: Callable[[StoryView, str], tuple[bool, str]]  # (view, folded text) -> (passed, detail)


@dataclass(frozen=True)
class CompiledWatchlist:
    config: WatchlistConfig
    checks: tuple[Check, ...]
    query: Any = None  # monitor.query.Query when the watchlist has a query

    @property
    def name(self) -> str:
        return self.config.name

    def evaluate(self, view: StoryView, text: str | None = None) -> tuple[bool, list[tuple[str, bool, str]]]:
        """(matched, [(condition, passed, detail), ...]) — all conditions are evaluated, for explanations."""
        folded = text if text is not None else fold(f"{view.title}\n{view.summary}")
        results = [(check.label, *check.test(view, folded)) for check in self.checks]
        return bool(results) and all(passed for _, passed, _ in results), results

    def match(self, view: StoryView, text: str | None = None) -> Match | None:
        matched, results = self.evaluate(view, text)
        if not matched:
            return None
        why = "; ".join(f"{label}: {detail}" for label, _, detail in results if detail) or "all conditions held"
        spec = self.config.spec
        routes = tuple(Route(channel=r.channel, mode=r.mode, severity=r.severity or spec.severity, urgent=r.urgent)
                       for r in routes_of(spec))
        return Match(story_id=view.id, watchlist=self.name, routes=routes, why=why, severity=spec.severity)


def compile_all(configs: Sequence[WatchlistConfig]) -> list[CompiledWatchlist]:
    """Compile every enabled watchlist; collect all errors (file:line:column) into one ConfigError."""
    compiled, problems = [], []
    for config in configs:
        try:
            compiled.append(compile_watchlist(config))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return [c for c in compiled if c.config.spec.enabled]


def compile_watchlist(config: WatchlistConfig) -> CompiledWatchlist:
    spec = config.spec
    checks: list[Check] = []
    if spec.sources:
        checks.append(_source_check(spec.sources))
    if spec.keywords is not None:
        checks.extend(_keyword_checks(spec.keywords.any, spec.keywords.all, spec.keywords.none))
    query = None
    if spec.query is not None:
        query = _compile_query(config)
        checks.append(Check("query", lambda view, text, q=query: (q.matches(view), "")))
    if spec.min_score is not None:
        checks.append(_score_check(spec.min_score))
    if spec.subtopics:
        checks.append(_subtopic_check(spec.subtopics))
    if not checks:
        raise ConfigError([f"{config.path}:1: watchlist '{spec.name}' has no conditions (add keywords, query, "
                           f"min_score or subtopics)"])
    return CompiledWatchlist(config=config, checks=tuple(checks), query=query)


def _compile_query(config: WatchlistConfig) -> Any:
    from .query import parse  # the query language is optional for keyword-only watchlists

    assert config.spec.query is not None
    try:
        return parse(config.spec.query, config.spec.entities)
    except QuerySyntaxError as exc:
        raise ConfigError([exc.render(str(config.path), config.query_line)]) from None


def _found(patterns: Sequence[tuple[str, re.Pattern[str]]], text: str) -> list[str]:
    return [term for term, pattern in patterns if pattern.search(text)]


def _keyword_checks(any_terms: Sequence[str], all_terms: Sequence[str | list[str]],
                    none_terms: Sequence[str]) -> list[Check]:
    checks = []
    if any_terms:
        pats = [(t, term_pattern(t)) for t in any_terms]
        checks.append(Check("keywords.any", lambda v, text: _describe_found(_found(pats, text))))
    if all_terms:
        groups = [[(t, term_pattern(t)) for t in ([g] if isinstance(g, str) else g)] for g in all_terms]

        def all_test(view: StoryView, text: str) -> tuple[bool, str]:
            hits = [_found(group, text) for group in groups]
            missing = [" | ".join(t for t, _ in group) for group, hit in zip(groups, hits) if not hit]
            if missing:
                return False, "missing " + "; ".join(missing)
            return True, ", ".join(h[0] for h in hits)

        checks.append(Check("keywords.all", all_test))
    if none_terms:
        pats_none = [(t, term_pattern(t)) for t in none_terms]

        def none_test(view: StoryView, text: str) -> tuple[bool, str]:
            hits = _found(pats_none, text)
            return (not hits, "excluded by " + ", ".join(hits) if hits else "")

        checks.append(Check("keywords.none", none_test))
    return checks


def _describe_found(found: list[str]) -> tuple[bool, str]:
    return (bool(found), ", ".join(found[:5]) if found else "no keyword found")


def _score_check(minimum: float | str) -> Check:
    """score >= minimum; "auto" uses the threshold the model chose on held-out data (carried by the verdict)."""

    def test(view: StoryView, text: str) -> tuple[bool, str]:
        verdict = view.verdict
        if verdict is None:
            return False, "no classifier score"
        bar = verdict.threshold if minimum == "auto" else float(minimum)
        if bar is None:
            return False, "the model gave no threshold"
        terms = f" (terms: {', '.join(verdict.top_terms[:5])})" if verdict.top_terms else ""
        return verdict.score >= bar, f"{verdict.score:.2f} >= {bar:.2f}{terms}"

    return Check("score", test)


def _subtopic_check(wanted: Sequence[str]) -> Check:
    wanted_set = set(wanted)

    def test(view: StoryView, text: str) -> tuple[bool, str]:
        have = set(view.verdict.subtopics) if view.verdict else set()
        common = sorted(have & wanted_set)
        return bool(common), ", ".join(common) if common else "none of " + ", ".join(sorted(wanted_set))

    return Check("subtopics", test)


def _source_check(sources: Sequence[str]) -> Check:
    wanted = {s.casefold() for s in sources}

    def test(view: StoryView, text: str) -> tuple[bool, str]:
        names = {view.feed_name.casefold(), *(t.casefold() for t in view.feed_tags)}
        hit = sorted(names & wanted)
        return bool(hit), ", ".join(hit) if hit else "source not in list"

    return Check("sources", test)


@dataclass
class WatchlistTestResult:
    watchlist: str
    failures: list[str] = field(default_factory=list)


def run_examples(compiled: CompiledWatchlist, scorer: Callable[[str, str], Any] | None = None) -> list[str]:
    """Run a watchlist's `tests:` section; return failure descriptions (empty when all pass)."""
    from datetime import datetime, timezone

    spec = compiled.config.spec
    if spec.tests is None:
        return []
    failures = []
    for expected, titles in ((True, spec.tests.match), (False, spec.tests.no_match)):
        for title in titles:
            verdict = scorer(title, "") if scorer else None
            view = StoryView(id=0, title=title, summary="", link="", feed_name="test",
                             published=datetime.now(timezone.utc), verdict=verdict)
            got = compiled.match(view) is not None
            if got != expected:
                want = "match" if expected else "not match"
                failures.append(f"{compiled.config.path}: watchlist '{compiled.name}': expected to {want}: {title!r}")
    return failures
