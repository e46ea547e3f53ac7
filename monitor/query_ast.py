"""The watchlist query tree and its canonical printer.

Nodes are frozen dataclasses that compare structurally: where a node came from in the query
text (``span``) and how an entity was expanded (``EntityRef.terms``) do not take part in ``==``.
``to_text(node)`` prints a query that parses back to an equal tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Span = tuple[int, int] | None  # [start, end) offsets into the query text, None when built in code
CompareOp = Literal[">=", ">", "<=", "<"]
TextField = Literal["title", "summary"]


@dataclass(frozen=True)
class Term:
    """A word, phrase or prefix wildcard, e.g. ``Huawei``, ``"entity list"``, ``semiconduct*``."""

    text: str
    case_sensitive: bool = False
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class EntityRef:
    """``@name``: any of the entity's terms (expanded by the parser)."""

    name: str
    terms: tuple[Term, ...] = field(default=(), compare=False)
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Field:
    """``title:...`` or ``summary:...``: text matching restricted to one field."""

    name: TextField
    child: Node
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Source:
    """``source:value``: the feed name or a source outlet contains value (case-insensitive)."""

    value: str
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Tag:
    """``tag:value``: a feed or entry tag equals value (case-insensitive)."""

    value: str
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Subtopic:
    """``subtopic:value``: the classifier assigned this subtopic (false without a verdict)."""

    value: str
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Score:
    """``score>=0.6``: compares the classifier score (false without a verdict)."""

    op: CompareOp
    value: float
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Not:
    child: Node
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    span: Span = field(default=None, compare=False)


@dataclass(frozen=True)
class Near:
    """``left NEAR/n right``: both within n words of each other, in either order."""

    left: Node  # Term, EntityRef or an Or of those
    right: Node
    distance: int
    span: Span = field(default=None, compare=False)


Node = Term | EntityRef | Field | Source | Tag | Subtopic | Score | Not | And | Or | Near

TEXT_FIELDS: tuple[TextField, ...] = ("title", "summary")
VALUE_FIELDS = ("source", "tag", "subtopic")
ALL_FIELDS = (*TEXT_FIELDS, *VALUE_FIELDS, "case", "score")

# Binding strength, loosest first; a child printed inside a looser context needs no parentheses.
_PRECEDENCE = {Or: 1, And: 2, Not: 3, Near: 4}
_ATOM = 5
_BARE = re.compile(r"[^\s()\"@\-][^\s()\"]*")
# Typographic variants the lexer reads as their ASCII forms, one for one (positions stay exact).
TYPOGRAPHY = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "＂": '"', "（": "(", "）": ")",
                            "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-"})


def to_text(node: Node) -> str:
    """Print ``node`` as canonical query text: explicit AND/OR/NOT, minimal parentheses."""
    match node:
        case Term(text, case_sensitive):
            return ("case:" if case_sensitive else "") + _word(text)
        case EntityRef(name):
            return "@" + name
        case Field(name, child):
            inner = to_text(child)
            return f"{name}:{inner}" if _precedence(child) == _ATOM else f"{name}:({inner})"
        case Source(value) | Tag(value) | Subtopic(value):
            return f"{type(node).__name__.lower()}:{_word(value)}"
        case Score(op, value):
            return f"score{op}{value!r}"
        case Not(child):
            return "NOT " + _wrap(child, _PRECEDENCE[Not])
        case And(children) | Or(children):
            joiner = " AND " if isinstance(node, And) else " OR "
            return joiner.join(_wrap(c, _PRECEDENCE[type(node)]) for c in children)
        case Near(left, right, distance):
            level = _PRECEDENCE[Near]
            return f"{_wrap(left, level)} NEAR/{distance} {_wrap(right, level)}"
    raise TypeError(f"not a query node: {node!r}")


def _precedence(node: Node) -> int:
    return _PRECEDENCE.get(type(node), _ATOM)


def _wrap(node: Node, level: int) -> str:
    """Parenthesize ``node`` unless it binds tighter than ``level`` (so nested AND/OR keep their shape)."""
    text = to_text(node)
    tight = _precedence(node) > level or (isinstance(node, Not) and level == _PRECEDENCE[Not])
    return text if tight else f"({text})"


def _word(text: str) -> str:
    """A term or value bare when it would lex back as one word, else double-quoted."""
    plain = text.translate(TYPOGRAPHY)
    if _BARE.fullmatch(plain) and ":" not in plain and not _looks_special(plain):
        return text
    return '"' + "".join("\\" + c if c == "\\" or plain[i] == '"' else c for i, c in enumerate(text)) + '"'


def _looks_special(text: str) -> bool:
    """Words the lexer would read as operators, errors or conditions."""
    folded = text.casefold()
    return (folded in ("and", "or", "not") or folded.startswith("near")
            or folded.startswith("score") and any(c in text for c in "<>=!"))
