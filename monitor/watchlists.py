"""Watchlists: compiled rules that decide whether a story alerts, and why.

A watchlist's conditions are combined with AND: source filters, keyword rules (any/all/none), the query
language, classifier conditions (min_score, subtopics). Keyword terms go through the query engine's term
matching, so `keywords:` and `query:` read a story identically. A story is normalized once (``prepare``)
and that Doc is shared by every watchlist: ``match_all`` or ``watchlist.match(view, doc)``.

Entity groups come from the watchlist's own ``entities:`` and from the shared entity file named by
``entities_file:`` in monitor.yaml (a watchlist's own definition of a name wins). Every error names
file:line:column with the offending YAML line and a caret (``_Locator``).

Pure apart from reading the shared entity file, and the watchlist file again when an error is reported.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from .config import Config, WatchlistConfig, WatchlistFile, routes_of
from .errors import ConfigError, QuerySyntaxError
from .models import Match, Route, StoryView, Verdict
from .query import Doc, EntityRef, Node, Or, Query, check_entities, parse, prepare
from .query import _entity_term as entry_term  # one rule for entity entries and keyword items
from .query_eval import TermError, compile_node
from .query_eval import fold as fold_value
from .yamlsource import YamlSyntaxError, load_yaml

__all__ = ["Check", "CheckResult", "CompiledWatchlist", "Entities", "ExampleResult", "Replay", "compile_all",
           "compile_watchlist", "fold", "load_entity_file", "load_watchlist_file", "match_all", "prepare", "replay",
           "run_examples"]

Entities = dict[str, tuple[str, ...]]
_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def fold(text: str) -> str:
    """Casefolded NFKC text (kept for callers of the keyword matcher this module used to have)."""
    return unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()


# ---- locating errors in YAML files ----------------------------------------------------------------

class _Locator:
    """Line and column of a value in a YAML file, composed only when an error has to be reported."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: list[str] | None = None
        self._root: yaml.Node | None = None

    def _load(self) -> None:
        if self._lines is None:
            try:
                text = self.path.read_text(encoding="utf-8")
                self._root = yaml.compose(text, Loader=yaml.SafeLoader)
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                text = ""
            self._lines = text.split("\n")

    def node(self, loc: Sequence[str | int], key: bool = False) -> yaml.Node | None:
        """The value node at ``loc`` (with ``key``, the mapping key node that names it)."""
        self._load()
        node = self._root
        for depth, part in enumerate(loc, 1):
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pick = 0 if key and depth == len(loc) else 1
                node = next((pair[pick] for pair in node.value if pair[0].value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                return None
        return node

    def line(self, loc: Sequence[str | int]) -> int:
        node = self.node(loc)
        return node.start_mark.line + 1 if node is not None else 1

    def at(self, loc: Sequence[str | int], line: int, column: int, key: bool = False) -> tuple[int, int] | None:
        """File (line, column) of 1-based (line, column) inside the scalar at ``loc``; None if unknown."""
        node = self.node(loc, key)
        if not isinstance(node, yaml.ScalarNode):
            return None
        start, end = node.start_mark, node.end_mark
        if node.style == "|":  # a literal block keeps its lines: only the block's indentation moves columns
            assert self._lines is not None
            content = [t for t in self._lines[start.line + 1:end.line + 1] if t.strip()]
            indent = len(content[0]) - len(content[0].lstrip(" ")) if content else 0
            return start.line + line + 1, indent + column
        if start.line == end.line and line == 1:  # a one-line plain or quoted scalar
            return start.line + 1, start.column + (node.style in ("'", '"')) + column
        return None

    def render(self, loc: Sequence[str | int], message: str, line: int = 1, column: int = 1,
               hint: str = "", key: bool = False) -> str:
        """'file:line:col: message', the file's line and a caret; file:line when the column is unknown."""
        spot = self.at(loc, line, column, key)
        if spot is None:
            return f"{self.path}:{self.line(loc)}: {message}" + (f" (hint: {hint})" if hint else "")
        assert self._lines is not None
        shown = self._lines[spot[0] - 1] if spot[0] - 1 < len(self._lines) else ""
        out = [f"{self.path}:{spot[0]}:{spot[1]}: {message}", "    " + shown, "    " + " " * (spot[1] - 1) + "^"]
        return "\n".join(out + ([f"    hint: {hint}"] if hint else []))

    def query_error(self, loc: Sequence[str | int], exc: QuerySyntaxError, fallback_line: int) -> str:
        if self.at(loc, exc.line, exc.column) is None:  # folded or multi-line quoted: positions in the query
            return exc.render(str(self.path), fallback_line)
        return self.render(loc, exc.message, exc.line, exc.column, exc.hint)


# ---- entities -------------------------------------------------------------------------------------

def _checked_entities(raw: Mapping[str, Any], locator: _Locator,
                      prefix: tuple[str, ...]) -> tuple[Entities, list[str]]:
    """The entities with their valid entries, and an error for each bad name or entry (pointing at it).

    Bad entries are left out rather than failing the whole group, so one typo is reported once instead of
    again as "unknown entity" in every query that uses the group."""
    entities: Entities = {}
    problems: list[str] = []
    for name, entries in raw.items():
        items = [entries] if isinstance(entries, str) else list(entries or [])
        if not items or not all(isinstance(e, str) for e in items):
            problems.append(locator.render((*prefix, name), f"entity {name!r} needs a list of terms", key=True))
            continue
        bad: set[int] = set()
        for err in check_entities({name: items}):
            if err.text not in items:  # about the name itself
                problems.append(locator.render((*prefix, name), err.message, hint=err.hint, key=True))
                bad.update(range(len(items)))
                continue
            index = items.index(err.text)
            bad.add(index)
            loc: tuple[str | int, ...] = (*prefix, name) if isinstance(entries, str) else (*prefix, name, index)
            offset = len(err.text) - len(err.text.lstrip()) + err.position
            problems.append(locator.render(loc, err.message, 1, offset + 1, err.hint))
        kept = tuple(e for i, e in enumerate(items) if i not in bad)
        if kept:
            entities[name] = kept
    return entities, problems


def load_entity_file(path: Path) -> tuple[Entities, list[str]]:
    """The shared entity groups (``entities: {name: [terms]}``) and the problems found in the file."""
    try:
        doc = load_yaml(path)
    except FileNotFoundError:
        return {}, [f"{path}:1: entity file not found (set by entities_file in monitor.yaml)"]
    except YamlSyntaxError as exc:
        return {}, [str(exc)]
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"{path}:1: cannot read: {exc}"]
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict) or not isinstance(data.get("entities", {}), dict):
        return {}, [f"{path}:1: expected `entities:` with a mapping of name -> list of terms"]
    locator = _Locator(path)
    problems = [f"{doc.where((key,))}: unknown field '{key}' (expected 'entities')" for key in data
                if key != "entities"]
    raw = data.get("entities") or {}
    entities, bad = _checked_entities(raw, locator, ("entities",))
    return entities, problems + bad


# ---- compiled watchlists --------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckResult:
    label: str  # sources, keywords.any, keywords.all, keywords.none, query, score, subtopics
    passed: bool
    detail: str


@dataclass(frozen=True)
class Check:
    """One condition: a fast predicate for matching and a describer for explanations."""

    label: str
    predicate: Callable[[Doc], bool]
    describe: Callable[[Doc], tuple[bool, str]]
    cost: int = 1  # cheaper checks run first; the result never depends on the order


@dataclass(frozen=True)
class CompiledWatchlist:
    config: WatchlistConfig
    checks: tuple[Check, ...]
    query: Query | None = None
    entities: Entities = field(default_factory=dict)
    # every condition as one function of a Doc (cheap conditions first); hot loops call it directly
    predicate: Callable[[Doc], bool] = field(default=lambda doc: False, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def uses_classifier(self) -> bool:
        spec = self.config.spec
        return spec.min_score is not None or bool(spec.subtopics) or bool(self.query and self.query.uses_classifier)

    def matches(self, doc: Doc) -> bool:
        return self.predicate(doc)

    def evaluate(self, story: StoryView | Doc) -> tuple[bool, list[CheckResult]]:
        """(matched, every condition with its detail): no short-circuit, for explanations."""
        doc = story if isinstance(story, Doc) else prepare(story)
        results = [CheckResult(check.label, *check.describe(doc)) for check in self.checks]
        return all(r.passed for r in results), results

    def match(self, view: StoryView, doc: Doc | str | None = None) -> Match | None:
        """A Match when every condition holds; pass the story's Doc to share it across watchlists."""
        prepared = doc if isinstance(doc, Doc) else prepare(view)
        if not self.predicate(prepared):
            return None
        _, results = self.evaluate(prepared)
        why = "; ".join(f"{r.label}: {r.detail}" for r in results if r.detail) or "all conditions held"
        spec = self.config.spec
        routes = tuple(Route(channel=r.channel, mode=r.mode, severity=r.severity or spec.severity, urgent=r.urgent)
                       for r in routes_of(spec))
        return Match(story_id=view.id, watchlist=self.name, routes=routes, why=why, severity=spec.severity)


def match_all(watchlists: Iterable[CompiledWatchlist], view: StoryView) -> list[Match]:
    """Every watchlist's match for one story, normalizing the story once."""
    doc = prepare(view)
    return [m for w in watchlists if (m := w.match(view, doc)) is not None]


def compile_all(configs: Sequence[WatchlistConfig], include_disabled: bool = False) -> list[CompiledWatchlist]:
    """Compile every watchlist (enabled ones are returned unless ``include_disabled``); collect all errors
    (file:line:column) into one ConfigError."""
    compiled: list[CompiledWatchlist] = []
    problems: list[str] = []
    shared: dict[Path, tuple[Entities, list[str]]] = {}
    for config in configs:
        try:
            compiled.append(compile_watchlist(config, shared))
        except ConfigError as exc:
            problems.extend(p for p in exc.problems if p not in problems)  # a bad entity file is reported once
    if problems:
        raise ConfigError(problems)
    return [c for c in compiled if include_disabled or c.config.spec.enabled]


def compile_watchlist(config: WatchlistConfig,
                      shared: dict[Path, tuple[Entities, list[str]]] | None = None) -> CompiledWatchlist:
    """Compile one watchlist; ``shared`` caches the entity file across watchlists of one load."""
    spec, locator = config.spec, _Locator(config.path)
    entities, problems = _entities_for(config, locator, {} if shared is None else shared)
    checks: list[Check] = []
    if spec.sources:
        checks.append(_source_check(spec.sources))
    if spec.keywords is not None:
        checks.extend(_keyword_checks(spec, entities, locator, problems))
    query = None
    if spec.query is not None:
        try:
            query = parse(spec.query, entities)
        except QuerySyntaxError as exc:
            problems.append(locator.query_error(("query",), exc, config.query_line))
        else:
            checks.append(_query_check(query))
    if spec.min_score is not None:
        checks.append(_score_check(spec.min_score))
    if spec.subtopics:
        checks.append(_subtopic_check(spec.subtopics))
    if not checks and not problems:
        problems.append(f"{config.path}:1: watchlist '{spec.name}' has no conditions (add keywords, query, "
                        f"min_score or subtopics)")
    if problems:
        raise ConfigError(problems)
    return CompiledWatchlist(config=config, checks=tuple(checks), query=query, entities=entities,
                             predicate=_all_of([c.predicate for c in sorted(checks, key=lambda c: c.cost)]))


def _entities_for(config: WatchlistConfig, locator: _Locator,
                  shared: dict[Path, tuple[Entities, list[str]]]) -> tuple[Entities, list[str]]:
    path = config.entities_file
    common: Entities = {}
    problems: list[str] = []
    if path is not None:
        if path not in shared:
            shared[path] = load_entity_file(path)
        common, problems = shared[path][0], list(shared[path][1])
    own = config.spec.entities
    mine, bad = _checked_entities(own, locator, ("entities",))
    return {**common, **mine}, problems + bad


def _all_of(predicates: list[Callable[[Doc], bool]]) -> Callable[[Doc], bool]:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda doc: first(doc) and second(doc)
    checks = tuple(predicates)

    def every(doc: Doc) -> bool:
        for predicate in checks:
            if not predicate(doc):
                return False
        return True
    return every


# ---- the checks -----------------------------------------------------------------------------------

def _keyword_node(item: str, entities: Entities) -> Node:
    """A keyword item is one term (word, phrase, prefix*, case:X) or an @entity reference."""
    text = item.strip()
    if text.startswith("@"):
        name = text[1:]
        if name not in entities:
            close = difflib.get_close_matches(name, list(entities), n=3, cutoff=0.6)
            hint = ("did you mean " + " or ".join("@" + c for c in close) + "?" if close else
                    "defined entities: " + (", ".join("@" + n for n in sorted(entities)) or "none"))
            raise TermError(f"unknown entity @{name}", 0, hint)
        return EntityRef(name, tuple(entry_term(e) for e in entities[name]))
    return entry_term(text)


def _keyword_nodes(items: Sequence[str], loc: tuple[str | int, ...], entities: Entities, locator: _Locator,
                   problems: list[str], first: int = 0) -> list[tuple[str, Node]]:
    out = []
    for index, item in enumerate(items, first):
        try:
            out.append((item.strip(), _keyword_node(item, entities)))
        except TermError as e:
            offset = (e.offset or 0) + len(item) - len(item.lstrip())
            problems.append(locator.render((*loc, index), f"keyword {item!r}: {e.message}", 1, offset + 1, e.hint))
    return out


def _keyword_checks(spec: WatchlistFile, entities: Entities, locator: _Locator, problems: list[str]) -> list[Check]:
    assert spec.keywords is not None
    rules, checks = spec.keywords, []
    if rules.any:
        found = _finder(_keyword_nodes(rules.any, ("keywords", "any"), entities, locator, problems))
        checks.append(Check("keywords.any", found.any, lambda d: _listed(found.hits(d), "no keyword found"), 2))
    if rules.all:
        groups = [_finder(_keyword_nodes([g], ("keywords", "all"), entities, locator, problems, i)
                          if isinstance(g, str) else
                          _keyword_nodes(g, ("keywords", "all", i), entities, locator, problems))
                  for i, g in enumerate(rules.all)]
        checks.append(Check("keywords.all", _all_of([g.any for g in groups]),
                            lambda d: _all_groups(groups, d), 2 * len(groups)))
    if rules.none:
        excluded = _finder(_keyword_nodes(rules.none, ("keywords", "none"), entities, locator, problems))
        checks.append(Check("keywords.none", lambda d: not excluded.any(d), lambda d: _none_found(excluded, d), 2))
    return checks


@dataclass(frozen=True)
class _Finder:
    """Keyword items compiled twice: as one OR (fast: set and substring tests) and one by one (to name hits)."""

    labels: tuple[str, ...]
    each: tuple[Callable[[Doc], bool], ...]
    any: Callable[[Doc], bool]

    def hits(self, doc: Doc) -> list[str]:
        return [label for label, test in zip(self.labels, self.each) if test(doc)]


def _finder(items: list[tuple[str, Node]]) -> _Finder:
    nodes = [node for _, node in items]
    either = compile_node(Or(tuple(nodes))) if nodes else (lambda d: False)
    return _Finder(tuple(label for label, _ in items), tuple(compile_node(n) for n in nodes), either)


def _listed(found: list[str], otherwise: str) -> tuple[bool, str]:
    return bool(found), ", ".join(found[:5]) if found else otherwise


def _all_groups(groups: list[_Finder], doc: Doc) -> tuple[bool, str]:
    hits = [g.hits(doc) for g in groups]
    missing = [" | ".join(g.labels) for g, hit in zip(groups, hits) if not hit]
    if missing:
        return False, "missing " + "; ".join(missing)
    return True, ", ".join(h[0] for h in hits)


def _none_found(excluded: _Finder, doc: Doc) -> tuple[bool, str]:
    hits = excluded.hits(doc)
    return not hits, "excluded by " + ", ".join(hits) if hits else ""


def _query_check(query: Query) -> Check:
    def describe(doc: Doc) -> tuple[bool, str]:
        matched = query.matches_doc(doc)
        return matched, ", ".join(_matched_words(query, doc)[:6]) if matched else "no match"
    return Check("query", compile_node(query.root), describe, 5)  # the bare predicate: no method call per story


def _matched_words(query: Query, doc: Doc) -> list[str]:
    """Story words behind a match: matched terms and NEAR pairs, leaving out anything under a NOT."""
    words: list[str] = []
    negated_below: int | None = None
    for clause in query.explain(doc):
        if negated_below is not None and clause.depth > negated_below:
            continue
        negated_below = clause.depth if clause.kind == "not" else None
        if clause.matched and clause.kind in ("term", "near", "source", "tag", "subtopic"):
            words.extend(w for w in clause.words if w not in words)
    return words


def _score_check(minimum: float | str) -> Check:
    """score >= minimum; "auto" uses the threshold the model chose on held-out data (carried by the verdict)."""

    def bar(verdict: Verdict) -> float | None:
        return verdict.threshold if minimum == "auto" else float(minimum)

    def passed(doc: Doc) -> bool:
        verdict = doc.view.verdict
        limit = bar(verdict) if verdict is not None else None
        return verdict is not None and limit is not None and verdict.score >= limit

    def describe(doc: Doc) -> tuple[bool, str]:
        verdict = doc.view.verdict
        if verdict is None:
            return False, "no classifier score"
        limit = bar(verdict)
        if limit is None:
            return False, "the model gave no threshold"
        terms = f" (terms: {', '.join(verdict.top_terms[:5])})" if verdict.top_terms else ""
        passed = verdict.score >= limit
        return passed, f"{verdict.score:.2f} {'>=' if passed else '<'} {limit:.2f}{terms}"

    return Check("score", passed, describe, 0)


def _subtopic_check(wanted: Sequence[str]) -> Check:
    folded = frozenset(fold_value(s) for s in wanted)

    def describe(doc: Doc) -> tuple[bool, str]:
        have = [s for s in (doc.view.verdict.subtopics if doc.view.verdict else ()) if fold_value(s) in folded]
        return bool(have), ", ".join(have) if have else "none of " + ", ".join(sorted(wanted))

    return Check("subtopics", lambda d: not folded.isdisjoint(d.subtopics), describe, 0)


def _source_check(sources: Sequence[str]) -> Check:
    """The feed's name or one of its tags equals an item (any case)."""
    wanted = frozenset(fold_value(s) for s in sources)

    def passed(doc: Doc) -> bool:  # doc.sources[0] is the feed's name, folded the same way
        return doc.sources[0] in wanted or not wanted.isdisjoint(map(fold_value, doc.view.feed_tags))

    def describe(doc: Doc) -> tuple[bool, str]:
        view = doc.view
        hit = [n for n in (view.feed_name, *view.feed_tags) if fold_value(n) in wanted]
        return bool(hit), ", ".join(hit) if hit else "source not in list"

    return Check("sources", passed, describe, 0)


# ---- watchlists as code: the `tests:` section -----------------------------------------------------

class Scorer(Protocol):
    @property
    def threshold(self) -> float: ...

    def predict(self, title: str, summary: str) -> Verdict: ...


@dataclass(frozen=True)
class ExampleResult:
    """One example title of a watchlist's `tests:` section that did not behave as declared."""

    path: Path
    line: int
    watchlist: str
    title: str
    expected: bool  # True: must match
    reason: str

    def __str__(self) -> str:
        want = "match" if self.expected else "not match"
        return (f"{self.path}:{self.line}: watchlist '{self.watchlist}': expected to {want}: {self.title!r}"
                f" ({self.reason})")


def run_examples(compiled: CompiledWatchlist, scorer: Scorer | None = None) -> list[ExampleResult]:
    """Run a watchlist's `tests:` section; return the failures (empty when all pass).

    With ``scorer`` each example gets a verdict from the model (as the pipeline would); without, examples
    have no verdict, so score and subtopic conditions fail on them."""
    from datetime import UTC, datetime

    spec = compiled.config.spec
    if spec.tests is None:
        return []
    locator, failures = _Locator(compiled.config.path), []
    for expected, key, titles in ((True, "match", spec.tests.match), (False, "no_match", spec.tests.no_match)):
        for index, title in enumerate(titles):
            verdict = _verdict(scorer, title) if scorer is not None else None
            view = StoryView(id=0, title=title, summary="", link="", feed_name="test",
                             published=datetime.now(UTC), verdict=verdict)
            matched, results = compiled.evaluate(view)
            if matched != expected:
                reason = ("; ".join(f"{r.label}: {r.detail}" for r in results if not r.passed) if expected else
                          "; ".join(f"{r.label}: {r.detail}" for r in results if r.detail) or "all conditions held")
                failures.append(ExampleResult(compiled.config.path, locator.line(("tests", key, index)),
                                              compiled.name, title, expected, reason))
    return failures


def _verdict(scorer: Scorer, title: str) -> Verdict:
    verdict = scorer.predict(title, "")
    if verdict.threshold is None:  # as the pipeline does: the verdict carries the model's threshold
        verdict = Verdict(verdict.score, verdict.subtopics, verdict.top_terms, verdict.model_version,
                          scorer.threshold)
    return verdict


# ---- replay ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Replay:
    """What a watchlist would have alerted over stored stories, and how that differs from a baseline."""

    matched: tuple[StoryView, ...]
    baseline: tuple[StoryView, ...] | None  # None: no baseline to compare with

    @property
    def added(self) -> tuple[StoryView, ...]:
        before = {v.id for v in self.baseline or ()}
        return tuple(v for v in self.matched if v.id not in before)

    @property
    def removed(self) -> tuple[StoryView, ...]:
        now = {v.id for v in self.matched}
        return tuple(v for v in self.baseline or () if v.id not in now)


def replay(candidate: CompiledWatchlist, baseline: CompiledWatchlist | None, views: Iterable[StoryView]) -> Replay:
    """Evaluate ``candidate`` (and ``baseline``) on each story, normalizing each story once."""
    matched: list[StoryView] = []
    before: list[StoryView] = []
    for view in views:
        doc = prepare(view)
        if candidate.predicate(doc):
            matched.append(view)
        if baseline is not None and baseline.predicate(doc):
            before.append(view)
    return Replay(tuple(matched), None if baseline is None else tuple(before))


def load_watchlist_file(path: Path, config: Config) -> WatchlistConfig:
    """Load and validate one watchlist file outside the configured directory (for replay and explain),
    with the settings of ``config`` (channels, the shared entity file); raise ConfigError."""
    from .config import _check_routes, _read, _validate  # the same validation as the configured watchlists

    problems: list[str] = []
    doc = _read(path, problems)
    spec = None
    if doc is not None:
        if isinstance(doc.data, dict):
            _check_routes(doc, doc.data.get("channels", ["default"]), set(config.channels), problems)
        spec = _validate(doc, WatchlistFile, problems)
    if problems or spec is None or doc is None:
        raise ConfigError(problems or [f"{path}:1: cannot load the watchlist"])
    return WatchlistConfig(name=spec.name, path=path, line=1, spec=spec,
                           query_line=doc.value_lines.get(("query",), 1), entities_file=config.entities_path)
