"""Evaluating query trees against stories.

A story's text is normalized once into a ``Doc``: NFKC, split into words (letters, digits and
combining marks; each CJK/Thai/... character is a word of its own), words joined by single spaces
with a space at both ends, then casefolded. Punctuation, quotes and dashes of any style are
separators, so "entity-list", "entity list" and "Entity List" read alike. A term compiles once to
a substring of that joined form (" export control" for ``"export control*"``) and to a regex that
finds every occurrence as word positions, which NEAR and explanations use.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from monitor.models import StoryView
from monitor.query_ast import (
    And,
    EntityRef,
    Field,
    Near,
    Node,
    Not,
    Or,
    Score,
    Source,
    Subtopic,
    Tag,
    Term,
    to_text,
)

Predicate = Callable[["Doc"], bool]
WordSpan = tuple[int, int]  # first and last word index, inclusive


def _combining_marks() -> str:
    """Character class body for combining marks (BMP) that ``\\w`` leaves out, e.g. Devanagari vowel signs."""
    marks = [c for c in range(0x10000) if unicodedata.category(chr(c))[0] == "M" and not chr(c).isalnum()]
    ranges, start = [], marks[0]
    for prev, cur in zip(marks, [*marks[1:], -1]):
        if cur != prev + 1:
            ranges.append(f"{chr(start)}-{chr(prev)}" if prev > start else chr(start))
            start = cur
    return "".join(ranges)


# Scripts written without spaces between words: every character counts as one word.
_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff\u3100-\u312f\u3130-\u318f"
             "\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
             "\U00020000-\U0003134f")
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_MARKS = _combining_marks()
_MARK_CHAR = re.compile(f"[{_MARKS}]")
# A word: one character of an unspaced script, or a run of other letters/digits (and combining marks).
_WORD = re.compile(f"[{_UNSPACED}]|[^\\W{_UNSPACED}]+")
_WORD_WITH_MARKS = re.compile(f"[{_UNSPACED}]|(?:[^\\W{_UNSPACED}]|[{_MARKS}])+")
_ASCII_SEPARATORS = {c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}
_TERM_WORD = re.compile(f"([{_UNSPACED}]|(?:[^\\W{_UNSPACED}]|[{_MARKS}])+)(\\*?)")
_TRAILING_WORD = re.compile(f"(?:\\w|[{_MARKS}])+$")
_FIELD_BREAK = "\x1f"  # between title and summary in the combined text: no phrase spans it


def words(text: str) -> list[str]:
    """Split NFKC-normalized text into matchable words."""
    if text.isascii():
        return text.translate(_ASCII_SEPARATORS).split()
    return (_WORD_WITH_MARKS if _MARK_CHAR.search(text) else _WORD).findall(text)


def _joined(found: list[str]) -> str:
    return f" {' '.join(found)} " if found else " "


@lru_cache(maxsize=4096)
def fold(value: str) -> str:
    """Normalize a metadata value (source, tag, subtopic) for case-insensitive comparison."""
    return unicodedata.normalize("NFKC", value).casefold().strip()


class Doc:
    """A story prepared once for matching by any number of queries.

    ``title``, ``summary`` and ``text`` (both, split by a field break) are casefolded words joined
    by spaces; ``words`` is the set of them. The case-preserving ``*_cased`` forms are built only
    when a ``case:`` term or an explanation asks.
    """

    __slots__ = (
        "_summary_cased",
        "_title_cased",
        "score",
        "sources",
        "subtopics",
        "summary",
        "tags",
        "text",
        "title",
        "view",
        "words",
    )

    def __init__(self, view: StoryView) -> None:
        self.view = view
        title_words = words(unicodedata.normalize("NFKC", view.title).casefold())
        summary_words = words(unicodedata.normalize("NFKC", view.summary).casefold())
        self.title = _joined(title_words)
        self.summary = _joined(summary_words)
        self.text = self.title + _FIELD_BREAK + self.summary
        self.words = frozenset(title_words + summary_words)
        self._title_cased: str | None = None
        self._summary_cased: str | None = None
        self.sources = tuple(fold(s) for s in (view.feed_name, *view.sources))
        self.tags = frozenset(fold(t) for t in (*view.feed_tags, *view.entry_tags))
        self.score = view.verdict.score if view.verdict else None
        self.subtopics = frozenset(fold(s) for s in view.verdict.subtopics) if view.verdict else frozenset()

    @property
    def title_cased(self) -> str:
        if self._title_cased is None:
            self._title_cased = _joined(words(unicodedata.normalize("NFKC", self.view.title)))
        return self._title_cased

    @property
    def summary_cased(self) -> str:
        if self._summary_cased is None:
            self._summary_cased = _joined(words(unicodedata.normalize("NFKC", self.view.summary)))
        return self._summary_cased

    @property
    def text_cased(self) -> str:
        return self.title_cased + _FIELD_BREAK + self.summary_cased

    def field(self, name: str, cased: bool) -> str:
        """The joined words of "text" (title and summary), "title" or "summary"."""
        return getattr(self, f"{name}_cased" if cased else name)  # type: ignore[no-any-return]


def field_parts(name: str) -> tuple[str, ...]:
    """The fields a scope covers; word positions (NEAR, explanations) are counted per field."""
    return ("title", "summary") if name == "text" else (name,)


def prepare(view: StoryView) -> Doc:
    """Normalize a story once; share the Doc across all queries in an evaluation pass."""
    return Doc(view)


class TermError(ValueError):
    """A term that cannot be compiled; ``offset`` is relative to the term's text (None: the whole term)."""

    def __init__(self, message: str, offset: int | None, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.offset, self.hint = message, offset, hint


@dataclass(frozen=True)
class TermPattern:
    """How one term is found in a Doc's joined words."""

    needle: str | None  # a plain substring test suffices (no wildcard before the last word)
    word: str | None  # the term is this single word, no wildcard: a set lookup suffices
    regex: re.Pattern[str]  # zero-width match at each occurrence; group 1 spans the matched words
    case_sensitive: bool

    def spans(self, doc: Doc, field: str) -> list[WordSpan]:
        """Every occurrence in one field (title or summary) as first and last word index."""
        joined = doc.field(field, self.case_sensitive)
        out: list[WordSpan] = []
        if self.needle is not None and self.needle not in joined:
            return out
        for m in self.regex.finditer(joined):
            first = joined.count(" ", 0, m.start()) - 1
            out.append((first, first + m.group(1).count(" ")))
        return out


@lru_cache(maxsize=4096)
def compile_term(text: str, case_sensitive: bool = False) -> TermPattern:
    """Compile a term, phrase or prefix wildcard; raises TermError pointing into ``text``."""
    norm = unicodedata.normalize("NFKC", text)
    _check_wildcards(norm, exact=norm == text)
    source = norm if case_sensitive else norm.casefold()  # the same steps as Doc, in the same order
    parts = [(w, bool(star)) for w, star in _TERM_WORD.findall(source)]
    if not parts:
        raise TermError(f"{text!r} has no letters or digits to match", None,
                        "punctuation is ignored when matching; quote a phrase or use words")
    core = " ".join(re.escape(w) + ("[^ ]*" if star else "") for w, star in parts)
    regex = re.compile(f"(?<= )(?=({core})(?= ))")
    needle = None
    if not any(star for _, star in parts[:-1]):
        needle = " " + " ".join(w for w, _ in parts) + ("" if parts[-1][1] else " ")
    word = parts[0][0] if len(parts) == 1 and not parts[0][1] else None
    return TermPattern(needle, word, regex, case_sensitive)


def _check_wildcards(norm: str, exact: bool) -> None:
    for m in re.finditer(r"\*+", norm):
        at = m.start() if exact else 0
        prefix = _TRAILING_WORD.search(norm, 0, m.start())
        if m.end() - m.start() > 1:
            raise TermError("'**' is not a wildcard", at, "use one * at the end of a word, e.g. semiconduct*")
        if prefix is None:
            raise TermError("'*' must follow the start of a word", at, "wildcards are prefixes, e.g. semiconduct*")
        if m.end() < len(norm) and _WORD.match(norm, m.end()):
            raise TermError("'*' can only end a word", at, "wildcards are prefixes, e.g. semiconduct*")
        if len(prefix.group()) < 2 and not _UNSPACED_CHAR.match(prefix.group()):
            raise TermError("a wildcard needs at least 2 letters before '*'", at, "e.g. ch* or chip*")


# ---- predicates -------------------------------------------------------------------------------

_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def compile_node(node: Node, field: str = "text") -> Predicate:
    """Turn a query tree into one fast predicate over Docs; ``field`` scopes text terms."""
    match node:
        case Term():
            return _term_predicate(compile_term(node.text, node.case_sensitive), field)
        case EntityRef():
            if not node.terms:
                raise ValueError(f"entity @{node.name} was not expanded; build queries with parse()")
            return _group(node.terms, field, any_of=True)
        case Field(name, child):
            return compile_node(child, name)
        case Source(value):
            wanted = fold(value)
            return lambda d: any(wanted in s for s in d.sources)
        case Tag(value):
            wanted_tag = fold(value)
            return lambda d: wanted_tag in d.tags
        case Subtopic(value):
            wanted_topic = fold(value)
            return lambda d: wanted_topic in d.subtopics
        case Score(op, value):
            compare = _COMPARE[op]
            return lambda d: d.score is not None and compare(d.score, value)
        case Not(child):
            inner = compile_node(child, field)
            return lambda d: not inner(d)
        case And(children):
            return _group(children, field, any_of=False)
        case Or(children):
            return _group(children, field, any_of=True)
        case Near():
            return _near_predicate(node, field)
    raise TypeError(f"not a query node: {node!r}")


def _term_predicate(pattern: TermPattern, field: str) -> Predicate:
    needle = pattern.needle
    if needle is not None and not pattern.case_sensitive:  # the hot path: one set or substring test
        if field == "text" and pattern.word is not None:
            word = pattern.word
            return lambda d: word in d.words
        if field == "text":
            return lambda d: needle in d.text
        if field == "title":
            return lambda d: needle in d.title
        return lambda d: needle in d.summary
    get = operator.attrgetter(f"{field}_cased" if pattern.case_sensitive else field)
    if needle is not None:
        return lambda d: needle in get(d)
    search = pattern.regex.search
    return lambda d: search(get(d)) is not None


def _group(nodes: Iterable[Node], field: str, any_of: bool) -> Predicate:
    """OR (``any_of``) or AND of nodes: plain words become one set operation, the rest run cheapest first."""
    members = [t for n in nodes for t in (n.terms if any_of and isinstance(n, EntityRef) else (n,))]
    plain = frozenset(w for n in members if (w := _plain_word(n, field)) is not None)
    predicates = [compile_node(n, field) for n in _cheap_first(members) if _plain_word(n, field) is None]
    if len(plain) > 1 and any_of:
        predicates.insert(0, lambda d: not plain.isdisjoint(d.words))
    elif len(plain) > 1:
        predicates.insert(0, lambda d: plain <= d.words)
    elif plain:
        predicates.insert(0, _term_predicate(compile_term(next(iter(plain))), field))
    return _any(predicates) if any_of else _all(predicates)


def _plain_word(node: Node, field: str) -> str | None:
    """The word a node tests, when it is one case-insensitive word (no wildcard) in title or summary."""
    if field != "text" or not isinstance(node, Term) or node.case_sensitive:
        return None
    return compile_term(node.text).word


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda d: first(d) and second(d)

    def every(d: Doc) -> bool:
        for p in predicates:
            if not p(d):
                return False
        return True
    return every


def _any(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]

    def some(d: Doc) -> bool:
        for p in predicates:
            if p(d):
                return True
        return False
    return some


def _cost(node: Node) -> int:
    """A rough evaluation cost, used to test cheap operands first (the result never changes)."""
    match node:
        case Term():
            return 1 if compile_term(node.text, node.case_sensitive).needle is not None else 3
        case EntityRef():
            return max(1, len(node.terms))
        case Field(_, child) | Not(child):
            return _cost(child)
        case And(children) | Or(children):
            return sum(_cost(c) for c in children)
        case Near(left, right):
            return 20 + _cost(left) + _cost(right)
    return 0


def _cheap_first(children: Iterable[Node]) -> list[Node]:
    return sorted(children, key=_cost)


def near_operand_patterns(node: Node) -> list[TermPattern]:
    """The term patterns of a NEAR operand: a Term, an EntityRef or an Or of those."""
    match node:
        case Term():
            return [compile_term(node.text, node.case_sensitive)]
        case EntityRef():
            return [compile_term(t.text, t.case_sensitive) for t in node.terms]
        case Or(children):
            return [p for c in children for p in near_operand_patterns(c)]
    raise TypeError(f"not a NEAR operand: {to_text(node)}")


def _near_predicate(node: Near, field: str) -> Predicate:
    both = _all([compile_node(node.left, field), compile_node(node.right, field)])
    left, right = near_operand_patterns(node.left), near_operand_patterns(node.right)

    def near(d: Doc) -> bool:
        return both(d) and _near_pair(d, field, left, right, node.distance) is not None
    return near


def _near_pair(d: Doc, field: str, left: list[TermPattern], right: list[TermPattern],
               distance: int) -> tuple[str, WordSpan, WordSpan] | None:
    """The first (field, left span, right span) within ``distance`` words, if any."""
    for part in field_parts(field):
        rights = [s for p in right for s in p.spans(d, part)]
        for a in (s for p in left for s in p.spans(d, part)):
            for b in rights:
                gap = b[0] - a[1] if a[1] < b[0] else a[0] - b[1] if b[1] < a[0] else 0
                if 0 < gap <= distance:
                    return part, a, b
    return None


# ---- explanations -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ClauseResult:
    """One clause of an explained query, in pre-order; ``depth`` 0 is the whole query."""

    depth: int
    kind: str  # and, or, not, near, term, entity, field, source, tag, subtopic, score
    source: str  # the clause as written in the query (whitespace collapsed)
    matched: bool
    words: tuple[str, ...] = ()  # what matched, as written in the story


def explain(node: Node, doc: Doc, query_text: str = "") -> list[ClauseResult]:
    """Evaluate every clause (no short-circuit) and report each with what it matched."""
    out: list[ClauseResult] = []
    _explain(node, doc, "text", 0, query_text, out)
    return out


def _explain(node: Node, doc: Doc, field: str, depth: int, text: str, out: list[ClauseResult]) -> bool:
    slot = len(out)
    out.append(ClauseResult(depth, "", "", False))  # filled in once the children are known
    words: list[str] = []
    match node:
        case Term():
            pattern = compile_term(node.text, node.case_sensitive)
            words = [_words_at(doc, part, s) for part in field_parts(field) for s in pattern.spans(doc, part)]
            matched = bool(words)
        case EntityRef():
            results = [_explain(t, doc, field, depth + 1, "", out) for t in node.terms]
            words = [w for r in out[slot + 1:] if r.matched for w in r.words]
            matched = any(results)
        case Field(name, child):
            matched = _explain(child, doc, name, depth + 1, text, out)
        case Not(child):
            matched = not _explain(child, doc, field, depth + 1, text, out)
        case And(children) | Or(children):
            results = [_explain(c, doc, field, depth + 1, text, out) for c in children]
            matched = all(results) if isinstance(node, And) else any(results)
        case Near():
            for operand in (node.left, node.right):
                _explain(operand, doc, field, depth + 1, text, out)
            pair = _near_pair(doc, field, near_operand_patterns(node.left),
                              near_operand_patterns(node.right), node.distance)
            matched = pair is not None
            if pair is not None:
                words = [_words_at(doc, pair[0], pair[1]), _words_at(doc, pair[0], pair[2])]
        case _:
            matched = compile_node(node, field)(doc)
            words = _metadata_words(node, doc) if matched or isinstance(node, Score) else []
    kind = "entity" if isinstance(node, EntityRef) else type(node).__name__.lower()
    out[slot] = ClauseResult(depth, kind, _source_text(node, text), matched, tuple(dict.fromkeys(words)))
    return matched


def _words_at(doc: Doc, field: str, span: WordSpan) -> str:
    """The story words at ``span``, as written, rejoined for display (no spaces between CJK)."""
    cased, folded = doc.field(field, True)[1:-1].split(" "), doc.field(field, False)[1:-1].split(" ")
    shown = cased if len(cased) == len(folded) else folded  # casefolding never splits a word, but be safe
    out = ""
    for word in shown[span[0]:span[1] + 1]:
        glued = not out or (_UNSPACED_CHAR.match(word) and _UNSPACED_CHAR.match(out[-1]))
        out += word if glued else " " + word
    return out


def _metadata_words(node: Node, doc: Doc) -> list[str]:
    view = doc.view
    match node:
        case Source(value):
            return [s for s in (view.feed_name, *view.sources) if fold(value) in fold(s)]
        case Tag(value):
            return [t for t in (*view.feed_tags, *view.entry_tags) if fold(t) == fold(value)]
        case Subtopic(value):
            return [value]
        case Score():
            return [f"score={doc.score:.2f}" if doc.score is not None else "no verdict"]
    return []


def _source_text(node: Node, text: str) -> str:
    span = node.span
    if span is not None and text:
        return " ".join(text[span[0]:span[1]].split())
    return to_text(node)
