"""The watchlist query language: parse, match, explain, print.

    q = parse('@huawei NEAR/5 (ban* OR sanction*) score>=0.6', entities={"huawei": ["Huawei", "华为"]})
    q.matches(view)                      # one story
    doc = prepare(view); q.matches_doc(doc)   # many queries over one story: normalize it once
    print(render_explanation(q.explain(view)))

The grammar (operators are UPPERCASE; ``docs/query-language.md`` is the user's reference)::

    query    := or EOF
    or       := and ("OR" and)*
    and      := unary (["AND"] unary)*           juxtaposition means AND
    unary    := ("NOT" | "-") unary | near
    near     := primary ["NEAR/" n primary]      operands: terms, @entities, (a OR b) of those
    primary  := "(" or ")" | term | @entity | field ":" primary | "case:" term | "score" cmp number

Every syntax error is a ``QuerySyntaxError`` carrying the exact character position.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence

from monitor.errors import QuerySyntaxError
from monitor.models import StoryView
from monitor.query_ast import (
    TEXT_FIELDS,
    VALUE_FIELDS,
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
from monitor.query_eval import ClauseResult, Doc, TermError, compile_node, compile_term, explain, prepare
from monitor.query_lex import Token, lex

__all__ = ["And", "ClauseResult", "Doc", "EntityRef", "Field", "Near", "Node", "Not", "Or", "Query", "Score",
           "Source", "Subtopic", "Tag", "Term", "check_entities", "parse", "prepare", "render_explanation",
           "to_text"]

Entities = Mapping[str, Sequence[str]]
_ENTITY_NAME = re.compile(r"[\w-]+")
_VALUE_NODES: dict[str, type[Source | Tag | Subtopic]] = {"source": Source, "tag": Tag, "subtopic": Subtopic}
_STARTS = {"(", "NOT", "-", "WORD", "PHRASE", "ENTITY", "FIELD", "SCORE"}
_OPERAND_HINT = 'NEAR operands are terms, "phrases", wildcards, @entities or (a OR b) groups of those'


class Query:
    """A parsed query, compiled once; equality is structural (``parse(to_text(q)) == q``)."""

    __slots__ = ("_predicate", "root", "text")

    def __init__(self, root: Node, text: str = "") -> None:
        self.root = root
        self.text = text or to_text(root)
        self._predicate = compile_node(root)

    def matches(self, view: StoryView) -> bool:
        return self._predicate(prepare(view))

    def matches_doc(self, doc: Doc) -> bool:
        return self._predicate(doc)

    def explain(self, story: StoryView | Doc) -> list[ClauseResult]:
        """Every clause in pre-order with whether it matched and the story words it matched."""
        doc = story if isinstance(story, Doc) else prepare(story)
        return explain(self.root, doc, self.text)

    @property
    def uses_classifier(self) -> bool:
        """Whether any clause reads the classifier verdict (score or subtopic)."""
        return _uses_classifier(self.root)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and self.root == other.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"Query({to_text(self.root)!r})"


def parse(text: str, entities: Entities | None = None) -> Query:
    """Parse query text; raises QuerySyntaxError with the position of the first problem."""
    return Query(_Parser(text, entities or {}).parse(), text)


def render_explanation(results: Sequence[ClauseResult]) -> str:
    """An indented tree: '+' matched, '-' did not, with the story words each clause matched."""
    lines = []
    for r in results:
        found = f"    <- {', '.join(r.words)}" if r.words else ""
        lines.append(f"{'  ' * r.depth}{'+' if r.matched else '-'} {r.source}{found}")
    return "\n".join(lines)


def check_entities(entities: Entities) -> list[QuerySyntaxError]:
    """Validate every entity definition; each error's text is the offending name or entry."""
    problems = []
    for name, entries in entities.items():
        if not _ENTITY_NAME.fullmatch(name):
            problems.append(QuerySyntaxError(f"entity name {name!r} must use letters, digits, _ or -", name, 0))
            continue
        for entry in _entry_list(entries):
            try:
                _entity_term(entry)
            except TermError as e:
                problems.append(QuerySyntaxError(f"entity {name!r}: {e.message}", entry, e.offset or 0, e.hint))
        if not _entry_list(entries):
            problems.append(QuerySyntaxError(f"entity {name!r} has no terms", name, 0))
    return problems


def _entry_list(entries: Sequence[str] | str) -> list[str]:
    return [entries] if isinstance(entries, str) else list(entries)


def _entity_term(entry: str) -> Term:
    """An entity entry is one term: ``Huawei``, ``Honor Device`` (a phrase), ``HiSili*``, ``case:AI``."""
    text = entry.strip()
    case = text.startswith("case:")
    if case:
        text = text[5:].strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    compile_term(text, case)
    return Term(text, case)


# ---- parser -----------------------------------------------------------------------------------

class _Parser:
    """Recursive descent over the tokens; ``scope`` is text, title, summary, source, tag or subtopic."""

    def __init__(self, text: str, entities: Entities) -> None:
        self.text = text
        self.entities = entities
        self.tokens = lex(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, message: str, pos: int, hint: str = "") -> QuerySyntaxError:
        return QuerySyntaxError(message, self.text, pos, hint)

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise self.fail("empty query", 0, "write at least one term, e.g. Huawei or @huawei")
        node = self.or_expr("text", None)
        extra = self.peek()
        if extra.kind == ")":
            raise self.fail("unmatched ')'", extra.start, "remove it or add a '(' before it")
        return node

    def or_expr(self, scope: str, after: Token | None) -> Node:
        items = [self.and_expr(scope, after)]
        while self.peek().kind == "OR":
            items.append(self.and_expr(scope, self.advance()))
        return items[0] if len(items) == 1 else Or(tuple(items), _span(items[0], items[-1]))

    def and_expr(self, scope: str, after: Token | None) -> Node:
        items = [self.unary(scope, after)]
        while True:
            token = self.peek()
            if token.kind == "AND":
                items.append(self.unary(scope, self.advance()))
            elif token.kind in _STARTS:
                items.append(self.unary(scope, None))
            else:
                return items[0] if len(items) == 1 else And(tuple(items), _span(items[0], items[-1]))

    def unary(self, scope: str, after: Token | None) -> Node:
        token = self.peek()
        if token.kind not in ("NOT", "-"):
            return self.near(scope, after)
        self.advance()
        child = self.unary(scope, token)
        return Not(child, (token.start, _end(child)))

    def near(self, scope: str, after: Token | None) -> Node:
        left = self.primary(scope, after)
        op = self.peek()
        if op.kind != "NEAR":
            return left
        if scope in VALUE_FIELDS:
            raise self.fail(f"NEAR cannot be used inside {scope}:", op.start, "NEAR compares word positions in text")
        self.advance()
        right = self.primary(scope, op)
        for operand in (left, right):
            self.check_near_operand(operand)
        if self.peek().kind == "NEAR":
            raise self.fail("NEAR cannot be chained", self.peek().start,
                            "combine two NEAR clauses with AND: (a NEAR/5 b) AND (b NEAR/5 c)")
        return Near(left, right, int(op.number), _span(left, right))

    def check_near_operand(self, node: Node) -> None:
        if isinstance(node, Or):
            for child in node.children:
                self.check_near_operand(child)
        elif not isinstance(node, Term | EntityRef):
            hint = _OPERAND_HINT
            if isinstance(node, Field):
                hint = f"put the field around the whole clause: {node.name}:(a NEAR/5 b)"
            raise self.fail(f"{to_text(node)!r} cannot be a NEAR operand", _start(node), hint)

    def primary(self, scope: str, after: Token | None) -> Node:
        token = self.peek()
        if token.kind == "(":
            return self.group(scope)
        if token.kind in ("WORD", "PHRASE"):
            return self.term(self.advance(), scope, False, token.start)
        if token.kind == "ENTITY":
            return self.entity(self.advance(), scope)
        if token.kind == "FIELD":
            return self.field(self.advance(), scope)
        if token.kind == "SCORE":
            if scope != "text":
                raise self.fail(f"score cannot be used inside {scope}:", token.start,
                                "put score conditions outside field groups")
            self.advance()
            return Score(token.text, token.number, (token.start, token.end))  # type: ignore[arg-type]
        raise self.missing_operand(token, after)

    def missing_operand(self, token: Token, after: Token | None) -> QuerySyntaxError:
        if after is not None and after.kind == "FIELD":
            return self.fail(f"nothing after '{after.text}:'", after.end,
                             f'write {after.text}:word, {after.text}:"a phrase" or {after.text}:(a OR b), no space')
        if after is not None and token.kind in ("EOF", ")"):
            return self.fail(f"{after.text!r} has nothing after it", after.start, "add a term after it or remove it")
        if after is not None:
            return self.fail(f"expected a term after {after.text!r}, found {token.text!r}", token.start,
                             "two operators in a row; remove one")
        if token.kind == ")":
            return self.fail("unmatched ')'", token.start, "remove it or add a '(' before it")
        if token.kind in ("NOT", "-"):
            return self.fail("NOT cannot be a NEAR operand", token.start, "write NOT (a NEAR/5 b)")
        return self.fail(f"{token.text!r} needs a term before it", token.start,
                         "operators go between terms: a OR b, a NEAR/5 b")

    def group(self, scope: str) -> Node:
        opening = self.advance()
        if self.peek().kind == ")":
            raise self.fail("empty parentheses", opening.start, "put a term inside or remove them")
        if self.peek().kind == "EOF":
            raise self.fail("unclosed '('", opening.start, "add a matching ')'")
        node = self.or_expr(scope, None)
        closing = self.peek()
        if closing.kind != ")":
            raise self.fail("unclosed '('", opening.start, "add a matching ')'")
        self.advance()
        return dataclasses.replace(node, span=(opening.start, closing.end))

    def term(self, token: Token, scope: str, case: bool, start: int) -> Node:
        span = (start, token.end)
        if scope in VALUE_FIELDS:
            if not token.text.strip():
                raise self.fail(f"empty {scope} value", token.start, f'write {scope}:name or {scope}:"two words"')
            return _VALUE_NODES[scope](token.text, span)
        try:
            compile_term(token.text, case)
        except TermError as e:
            at = token.start if e.offset is None else token.start + (token.kind == "PHRASE") + e.offset
            raise self.fail(e.message, at, e.hint) from None
        return Term(token.text, case, span)

    def entity(self, token: Token, scope: str) -> Node:
        if scope in VALUE_FIELDS:
            raise self.fail(f"@{token.text} cannot be used inside {scope}:", token.start,
                            "entities match title and summary text")
        if token.text not in self.entities:
            raise self.fail(f"unknown entity @{token.text}", token.start, self.entity_hint(token.text))
        try:
            terms = tuple(_entity_term(e) for e in _entry_list(self.entities[token.text]))
        except TermError as e:
            raise self.fail(f"entity @{token.text}: {e.message}", token.start, e.hint) from None
        return EntityRef(token.text, terms, (token.start, token.end))

    def entity_hint(self, name: str) -> str:
        if not self.entities:
            return "no entities are defined; define them under 'entities:'"
        close = difflib.get_close_matches(name, list(self.entities), n=3, cutoff=0.6)
        if close:
            return "did you mean " + " or ".join("@" + c for c in close) + "?"
        return "defined entities: " + ", ".join("@" + n for n in sorted(self.entities))

    def field(self, token: Token, scope: str) -> Node:
        name, value = token.text, self.peek()
        if name == "score":
            raise self.fail("score needs a comparison", token.start, "write score>=0.6 (also >, <=, <)")
        if value.start != token.end or value.kind not in _STARTS:
            raise self.missing_operand(value, token)
        if value.kind in ("NOT", "-"):
            raise self.fail(f"NOT cannot follow {name}:", value.start, f"write -{name}:x or {name}:(NOT x)")
        if name == "case":
            if scope in VALUE_FIELDS or value.kind not in ("WORD", "PHRASE"):
                raise self.fail("case: applies to one term or phrase", token.start,
                                'e.g. case:AI or case:"Entity List"')
            return self.term(self.advance(), scope, True, token.start)
        if scope != "text":
            raise self.fail(f"{name}: cannot be used inside {scope}:", token.start,
                            "fields do not nest; write them side by side: title:a source:b")
        if name in TEXT_FIELDS:
            child = self.primary(name, token)
            return Field(name, child, (token.start, _end(child)))
        node = self.primary(name, token)
        return dataclasses.replace(node, span=(token.start, _end(node)))


def _uses_classifier(node: Node) -> bool:
    match node:
        case Score() | Subtopic():
            return True
        case Field(_, child) | Not(child):
            return _uses_classifier(child)
        case And(children) | Or(children):
            return any(_uses_classifier(c) for c in children)
    return False


def _start(node: Node) -> int:
    return node.span[0] if node.span else 0


def _end(node: Node) -> int:
    return node.span[1] if node.span else 0


def _span(first: Node, last: Node) -> tuple[int, int]:
    return (_start(first), _end(last))
