"""Lexer for the watchlist query language: text to tokens with exact character positions."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from monitor.errors import QuerySyntaxError
from monitor.query_ast import ALL_FIELDS, TYPOGRAPHY

MAX_NEAR = 100

_SPACE = re.compile(r"\s+")
_BARE = re.compile(r"[^\s()\"]+")
_ENTITY = re.compile(r"@([\w-]*)")
_FIELD = re.compile(r"([A-Za-z_]+):")
_SCORE = re.compile(r"(?i:score)\s*([<>!=]=?|==?)\s*")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_NEAR = re.compile(r"NEAR(?:/(\S*))?")
_DELIMITER = re.compile(r"[\s()\"]|$")


@dataclass(frozen=True)
class Token:
    kind: str  # ( ) AND OR NOT - NEAR WORD PHRASE ENTITY FIELD SCORE EOF
    text: str  # the word, phrase content, entity or field name, or comparison operator
    start: int
    end: int
    number: float = 0.0  # NEAR distance or score value


def lex(text: str) -> list[Token]:
    """Tokens of ``text``, ending with EOF; raises QuerySyntaxError at the first bad character."""
    return _Lexer(text).tokens()


class _Lexer:
    """Decides on ``folded`` (curly quotes, fullwidth parentheses and dashes made ASCII, one for
    one, so positions agree) but takes words and phrases from the original text."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.text = text.translate(TYPOGRAPHY)

    def fail(self, message: str, pos: int, hint: str = "") -> QuerySyntaxError:
        return QuerySyntaxError(message, self.original, pos, hint)

    def tokens(self) -> list[Token]:
        out, pos = [], 0
        while True:
            pos = m.end() if (m := _SPACE.match(self.text, pos)) else pos
            if pos >= len(self.text):
                out.append(Token("EOF", "", pos, pos))
                return out
            token = self.one(pos)
            out.append(token)
            pos = token.end

    def one(self, pos: int) -> Token:
        text = self.text
        char = text[pos]
        if char in "()":
            return Token(char, char, pos, pos + 1)
        if char == '"':
            return self.phrase(pos)
        if char == "-":
            if pos + 1 == len(text) or text[pos + 1].isspace() or text[pos + 1] == ")":
                raise self.fail("'-' must touch what it excludes", pos, "write -term or NOT term")
            return Token("-", "-", pos, pos + 1)
        if char == "@":
            return self.entity(pos)
        if m := _SCORE.match(text, pos):
            return self.score(pos, m)
        if m := _FIELD.match(text, pos):
            return self.field(pos, m)
        return self.bare(pos)

    def phrase(self, pos: int) -> Token:
        text, chars, i = self.text, [], pos + 1
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            chars.append(self.original[i])
            i += 1
        if i >= len(text):
            raise self.fail("unterminated quote", pos, 'close the phrase with a matching "')
        return Token("PHRASE", "".join(chars), pos, i + 1)

    def entity(self, pos: int) -> Token:
        m = _ENTITY.match(self.text, pos)
        assert m is not None
        if not m.group(1):
            raise self.fail("'@' needs an entity name", pos, "write @name, e.g. @huawei")
        if not _DELIMITER.match(self.text, m.end()):
            raise self.fail("entity names use letters, digits, _ and -", m.end(),
                            "separate the entity from what follows with a space")
        return Token("ENTITY", m.group(1), pos, m.end())

    def score(self, pos: int, m: re.Match[str]) -> Token:
        op = m.group(1)
        if op not in (">=", ">", "<=", "<"):
            raise self.fail(f"score cannot be compared with {op!r}", m.start(1), "use >=, >, <= or <, e.g. score>=0.6")
        number = _NUMBER.match(self.text, m.end())
        if number is None or not _DELIMITER.match(self.text, number.end()):
            raise self.fail("score needs a number", m.end(), "e.g. score>=0.6")
        value = float(number.group())
        if not 0.0 <= value <= 1.0:
            raise self.fail(f"score {number.group()} is out of range", m.end(), "classifier scores are between 0 and 1")
        return Token("SCORE", op, pos, number.end(), value)

    def field(self, pos: int, m: re.Match[str]) -> Token:
        name = m.group(1).lower()
        if name in ALL_FIELDS:
            return Token("FIELD", name, pos, m.end())
        close = difflib.get_close_matches(name, ALL_FIELDS, n=2, cutoff=0.6)
        guess = f"did you mean {' or '.join(c + ':' for c in close)}? " if close else ""
        raise self.fail(f"unknown field {m.group(1)!r}", pos,
                        f"{guess}fields are {', '.join(ALL_FIELDS)}; to match text with ':' quote it")

    def bare(self, pos: int) -> Token:
        m = _BARE.match(self.text, pos)
        assert m is not None
        word, end = m.group(), m.end()
        if word in ("AND", "OR", "NOT"):
            return Token(word, word, pos, end)
        if near := _NEAR.fullmatch(word):
            return Token("NEAR", "NEAR", pos, end, self.near_distance(pos, near.group(1)))
        if word.casefold() in ("and", "or", "not") or word.casefold().startswith("near/"):
            op = word.split("/")[0].upper()
            raise self.fail(f"{word!r} is not an operator", pos,
                            f'operators are UPPERCASE: {op}; to search for the word itself, quote it: "{word}"')
        return Token("WORD", self.original[pos:end], pos, end)

    def near_distance(self, pos: int, digits: str | None) -> int:
        if digits is None:
            raise self.fail("NEAR needs a distance", pos + 4, "write NEAR/5 for 'within 5 words'")
        if not digits.isdigit() or not 1 <= int(digits) <= MAX_NEAR:
            raise self.fail(f"bad NEAR distance {digits!r}", pos + 5,
                            f"use a whole number of words from 1 to {MAX_NEAR}, e.g. NEAR/5")
        return int(digits)
