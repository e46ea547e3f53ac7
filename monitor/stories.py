"""Near-duplicate story clustering: one story per event, not one per copy.

The same wire story reaches us from many outlets with another headline, a trimmed summary, an outlet
suffix or a prefix such as "EXCLUSIVE:". :class:`StoryIndex` keeps the entries of the last ``window``
(72 h by default) in memory and answers "which existing story is this a copy of?".

Decision rule (chosen by measurement on ``bench/data``; see ``bench/bench_dedup.py``):

* candidates come from MinHash LSH over word shingles of the normalized title+summary, plus an inverted
  index over the rarest title terms (so headline-only entries and reworded copies are found too);
* for each candidate within the window we compute ``text`` = containment of the summary shingles
  (a trimmed copy is contained in the full one) and ``title`` = overlap of the content terms of the two
  headlines;
* a candidate is the same story when ``text >= TEXT_SAME``, or when ``title >= TITLE_SAME`` and the
  headlines do not disagree on specifics (different numbers, or each naming a proper noun the other lacks)
  and, where both entries have a summary, the summaries are not clearly about something else.

The index is pure and in memory; the store rebuilds it at start by calling :meth:`StoryIndex.add` for the
entries inside the window. Memory is bounded by the window: members older than it are evicted.
"""

from __future__ import annotations

import functools
import heapq
import html
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from datasketch import MinHash, MinHashLSH  # type: ignore[import-untyped]

SHINGLE_N = 3  # word trigrams: same recall as 1-2, fewest false merges (bench_dedup.py --shingles)
TEXT_SAME = 0.5  # summary-shingle containment that alone means "same story"
TITLE_SAME = 0.7  # title content-term overlap that means "same story" absent contrary evidence
TEXT_CONTRARY = 0.2  # with both summaries substantive, containment below this vetoes a title match
COVER_SAME = 0.65  # a headline-only entry whose terms the other entry mentions this fully ...
TITLE_SUPPORT = 0.2  # ... and whose headline shares at least this much with the other headline
STORY_COVER_SAME = 0.8  # a headline-only entry whose terms the story's members mention this fully
MIN_SUMMARY_TOKENS = 8  # a summary shorter than this is treated as missing
WEAK_TERMS = {"china": 0.25, "us": 0.25}  # in nearly every headline this monitor sees
RARE_TERMS = 4  # title terms (rarest first) used to look up candidates
POSTING_CAP = 5000  # terms in more window titles than this are too common to look up

_QUOTES = str.maketrans({c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u00b4`"} |
                        {c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"} |
                        {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"} |
                        {"\u00a0": " ", "\u2026": "...", "\u200b": ""})
_PREFIX = re.compile(
    r"^\s*(?:(?:exclusive|breaking|watch|live|video|photos|analysis|factbox|explainer|opinion|update|"
    r"urgent|just in|tech|world|business|in pictures)(?:\s*\d+)?\s*[-:|]\s*|[A-Z][A-Z ]{2,20}:\s+)",
    re.IGNORECASE)
_SUFFIX = re.compile(r"\s+[|\-]\s+((?:(?!\s[|\-]\s).){1,45})$")
_OUTLET_WORDS = re.compile(r"(?:news|times|post|herald|journal|daily|reuters|ap|afp|bloomberg|cnbc|bbc|"
                           r"guardian|telegraph|tribune|review|asia|online|\.com)\b", re.IGNORECASE)
_BOILER = [
    re.compile(r"\s*The post .{1,300}? appeared first on .{1,120}?\.?\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"\s*(?:read more|continue reading|read the full (?:story|article)|full story)\s*"
               r'(?:\.{3}|[»"]|>>|→)?\s*$', re.IGNORECASE),
    re.compile(r"\s*\[(?:\.{3}|…)\]\s*"),
    re.compile(r"<[^>]{1,200}>"),
]
_BYLINE = [
    re.compile(r"^\s*(?:By\s+[^()|]{1,80}?\s*)?\(?(?:[A-Z][A-Z .']{1,30},?\s*)?\((?:Reuters|AP|AFP|Bloomberg|"
               r"Xinhua|dpa|UPI|CNN)\)\s*[-:]\s*", re.IGNORECASE),
    re.compile(r"^\s*[A-Z][A-Z .']{2,30},?\s*\((?:[A-Za-z]{2,12})\)\s*-\s*"),
    re.compile(r"^\s*By\s+[^.|]{1,60}?(?:\||\s-\s|(?:staff )?(?:writer|correspondent|reporter|editor)\b)\s*",
               re.IGNORECASE),
]
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[a-z0-9]+")
_SYNONYMS = {
    "america": "us", "american": "us", "americans": "us", "washington": "us", "usa": "us",
    "chinese": "china", "beijing": "china", "prc": "china",
    "bn": "billion", "mn": "million", "pct": "percent", "percentage": "percent",
    "blacklist": "entity", "blacklists": "entity", "blacklisted": "entity", "blacklisting": "entity",
    "curb": "restrict", "curbs": "restrict", "restriction": "restrict", "restrictions": "restrict",
    "limit": "restrict", "limits": "restrict", "ban": "restrict", "bans": "restrict", "banned": "restrict",
    "hacker": "hack", "hackers": "hack", "hacked": "hack", "hacking": "hack",
    "breach": "hack", "breached": "hack", "breaches": "hack",
    "defence": "defense", "licence": "license", "licences": "license", "programme": "program",
}
_STOP = frozenset(
    ["a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "from", "by", "with", "as", "is", "are", "was", "were", "be", "been", "has", "have", "had", "it", "its", "this", "that", "these", "those", "into", "over", "after", "amid", "about", "against", "than", "then", "up", "out", "off", "new", "says", "said", "say", "report", "reports", "reported", "could", "would", "will", "may", "might", "can", "not", "no", "more", "most", "some", "all", "any", "two", "three", "one", "first", "what", "why", "how", "who", "which", "while", "since", "near", "under", "via", "s"])


@dataclass(frozen=True)
class StoryMatch:
    """The best existing story for a new entry: its id, the score, and the member entry that matched."""

    story_id: int
    similarity: float
    entry_key: int


@dataclass(frozen=True)
class _Features:
    terms: frozenset[str]  # content terms of the title (stemmed, synonyms folded)
    known: frozenset[str]  # content terms and numbers of title and summary together
    numbers: frozenset[str]  # numbers in the title
    names: frozenset[str]  # capitalized words in the title, as content terms
    shingles: frozenset[int]  # hashed shingles of the normalized summary
    text: frozenset[int]  # hashed shingles of normalized title+summary, for the LSH


@dataclass(frozen=True)
class _Member:
    key: int
    story_id: int
    when: datetime
    features: _Features


def _fold(text: str) -> str:
    for _ in range(3):  # feeds double-escape: "&amp;#8217;"
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return unicodedata.normalize("NFKC", text).translate(_QUOTES)


def _strip_outlet(title: str) -> str:
    for _ in range(2):
        title = _PREFIX.sub("", title, count=1)
        m = _SUFFIX.search(title)
        if m and _looks_like_outlet(m.group(1), m.group(0)):
            title = title[: m.start()]
    return title


def _looks_like_outlet(segment: str, whole: str) -> bool:
    words = segment.split()
    if "|" in whole or _OUTLET_WORDS.search(segment):
        return len(words) <= 6
    return len(words) <= 4 and all(w[:1].isupper() or not w[:1].isalpha() for w in words)


def _tokens(text: str) -> list[str]:
    text = re.sub(r"\bu\.s\.(?:a\.)?", "us", text.lower()).replace("u.k.", "uk").replace("'s ", " ")
    return [t.replace(",", "") for t in _TOKEN.findall(text)]


def normalize_title(title: str) -> str:
    """Fold a headline to lowercase words: outlet prefix/suffix removed, entities, quotes and dashes folded."""
    return " ".join(_tokens(_strip_outlet(_fold(title))))


def _clean_summary(summary: str) -> str:
    text = _fold(summary)
    for rx in _BOILER:
        text = rx.sub(" ", text)
    for rx in _BYLINE:
        text = rx.sub("", text, count=1)
    return text


def normalize_text(title: str, summary: str) -> str:
    """Normalized title followed by the summary without boilerplate (bylines, "Read more", "The post ...")."""
    return " ".join(filter(None, [normalize_title(title), " ".join(_tokens(_clean_summary(summary)))]))


def shingles(text: str, n: int | None = None) -> set[str]:
    """Word n-grams (default SHINGLE_N) of normalized text; a text shorter than n is one shingle."""
    n = n or SHINGLE_N
    words = text.split()
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i: i + n]) for i in range(len(words) - n + 1)}


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    word = _SYNONYMS.get(word, word)
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith(("ing", "ed")):
        word = word[: -3 if word.endswith("ing") else -2]
        return word[:-1] if word[-1] == word[-2] and word[-1] not in "aeiousl" else word
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _terms(words: Iterable[str]) -> frozenset[str]:
    return frozenset(_stem(w) for w in words if w not in _STOP)


def _hash(items: Iterable[str]) -> frozenset[int]:
    return frozenset(zlib.crc32(s.encode()) for s in items)


def _features(title: str, summary: str) -> _Features:
    clean_title = _strip_outlet(_fold(title))
    words = _tokens(clean_title)
    summary_words = _tokens(_clean_summary(summary))
    caps = [w for w in re.findall(r"\b[A-Z][\w-]*", clean_title) if w.lower() not in _STOP]
    body = summary_words if len(summary_words) >= MIN_SUMMARY_TOKENS else []
    terms = _terms(words)
    return _Features(
        terms=terms,
        known=terms | _terms(body),
        numbers=frozenset(w for w in words if w[:1].isdigit()),
        names=_terms(t for w in caps for t in _tokens(w)),
        shingles=_hash(shingles(" ".join(body))),
        text=_hash(shingles(" ".join(words + summary_words))),
    )


def _containment(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def _weight(terms: Iterable[str]) -> float:
    return sum(WEAK_TERMS.get(t, 1.0) for t in terms)


def _title_overlap(a: _Features, b: _Features) -> float:
    """Weighted overlap of the two headlines' content terms."""
    if not a.terms or not b.terms:
        return 0.0
    return 2 * _weight(a.terms & b.terms) / (_weight(a.terms) + _weight(b.terms))


def _coverage(a: _Features, b: _Features) -> float:
    """Weighted share of a's headline terms that b mentions anywhere (title or summary)."""
    return _weight(a.terms & b.known) / _weight(a.terms) if a.terms else 0.0


def _specifics_differ(a: _Features, b: _Features) -> bool:
    """True when each side has a number or a name in its headline that the other never mentions."""
    if a.numbers and b.numbers and not a.numbers & b.known and not b.numbers & a.known:
        return True
    return bool(a.names - b.known) and bool(b.names - a.known)


def score(a: _Features, b: _Features) -> float:
    """Similarity in 0..1 when ``a`` and ``b`` are the same story by the rule above, else 0."""
    if a.text and a.text == b.text:
        return 1.0
    text = _containment(a.shingles, b.shingles)
    if text >= TEXT_SAME:
        return text
    if _specifics_differ(a, b):
        return 0.0
    title = _title_overlap(a, b)
    if a.shingles and b.shingles:
        same = text >= TEXT_CONTRARY and max(title, min(_coverage(a, b), _coverage(b, a))) >= TITLE_SAME
        return max(title, text) if same else 0.0
    cover = max(_coverage(a, b) if not a.shingles else 0.0, _coverage(b, a) if not b.shingles else 0.0)
    same = title >= TITLE_SAME or (cover >= COVER_SAME and title >= TITLE_SUPPORT)
    return max(title, cover) if same else 0.0


class StoryIndex:
    """In-memory near-duplicate index over the entries of the last ``window``."""

    def __init__(self, window: timedelta = timedelta(hours=72), threshold: float = 0.3,
                 num_perm: int = 64) -> None:
        self.window = window
        self._num_perm = num_perm
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._perms = MinHash(num_perm=num_perm).permutations
        self._members: dict[int, _Member] = {}
        self._postings: dict[str, set[int]] = {}
        self._heap: list[tuple[datetime, int]] = []
        self._story_terms: dict[int, Counter[str]] = {}  # every term the story's members mention
        self._newest: datetime | None = None
        self._last: tuple[str, str, _Features, MinHash | None] | None = None  # match() then add() reuse

    def __len__(self) -> int:
        return len(self._members)

    def match(self, title: str, summary: str, when: datetime) -> StoryMatch | None:
        """The best story within the window that this entry is a copy of, or None for a new story."""
        return self._best(self._analyse(title, summary), when)

    def add(self, entry_key: int, story_id: int, title: str, summary: str, when: datetime) -> None:
        """Remember an entry as a member of ``story_id``; evicts members older than the window."""
        if entry_key in self._members:
            self._remove(entry_key)
        feats = self._analyse(title, summary)
        member = _Member(entry_key, story_id, when, feats)
        self._members[entry_key] = member
        if feats.text:
            self._lsh.insert(entry_key, self._minhash_of(title, summary, feats))
        for term in feats.terms:
            self._postings.setdefault(term, set()).add(entry_key)
        self._story_terms.setdefault(story_id, Counter()).update(feats.known)
        heapq.heappush(self._heap, (when, entry_key))
        if self._newest is None or when > self._newest:
            self._newest = when
            self.evict(when)

    def evict(self, now: datetime) -> int:
        """Drop members older than ``now - window``; returns how many were dropped."""
        cutoff, dropped = now - self.window, 0
        while self._heap and self._heap[0][0] < cutoff:
            when, key = heapq.heappop(self._heap)
            member = self._members.get(key)
            if member is not None and member.when == when:
                self._remove(key)
                dropped += 1
        return dropped

    def _remove(self, key: int) -> None:
        member = self._members.pop(key)
        if member.features.text:
            self._lsh.remove(key)
        for term in member.features.terms:
            posting = self._postings[term]
            posting.discard(key)
            if not posting:
                del self._postings[term]
        vocab = self._story_terms[member.story_id]
        vocab.subtract(member.features.known)
        if not +vocab:
            del self._story_terms[member.story_id]
        else:
            self._story_terms[member.story_id] = +vocab

    def _analyse(self, title: str, summary: str) -> _Features:
        if self._last is not None and self._last[0] == title and self._last[1] == summary:
            return self._last[2]
        feats = _features(title, summary)
        self._last = (title, summary, feats, None)
        return feats

    def _minhash_of(self, title: str, summary: str, feats: _Features) -> MinHash:
        if self._last is not None and self._last[2] is feats and self._last[3] is not None:
            return self._last[3]
        mh = self._minhash(feats.text)
        if self._last is not None and self._last[2] is feats:
            self._last = (title, summary, feats, mh)
        return mh

    def _minhash(self, hashes: frozenset[int]) -> MinHash:
        mh = MinHash(num_perm=self._num_perm, hashfunc=int, permutations=self._perms, scheme="affine32")
        mh.update_batch(np.fromiter(hashes, dtype=np.uint32, count=len(hashes)))
        return mh

    def _story_cover(self, feats: _Features, member: _Member) -> float:
        """A headline-only entry against everything the candidate's story mentions."""
        vocab = self._story_terms[member.story_id]
        cover = _weight(t for t in feats.terms if t in vocab) / _weight(feats.terms)
        if cover < STORY_COVER_SAME or _specifics_differ(feats, member.features):
            return 0.0
        return cover

    def _candidates(self, feats: _Features) -> set[int]:
        found: set[int] = set()
        if feats.text and self._last is not None and self._last[2] is feats:
            found.update(self._lsh.query(self._minhash_of(self._last[0], self._last[1], feats)))
        elif feats.text:
            found.update(self._lsh.query(self._minhash(feats.text)))
        sized = sorted((len(self._postings.get(t, ())), t) for t in feats.terms)
        for size, term in [st for st in sized if 0 < st[0] <= POSTING_CAP][:RARE_TERMS]:
            found |= self._postings[term]
        return found

    def _best(self, feats: _Features, when: datetime) -> StoryMatch | None:
        best: StoryMatch | None = None
        for key in self._candidates(feats):
            member = self._members[key]
            if abs(when - member.when) > self.window:
                continue
            sim = score(feats, member.features)
            if not sim and not feats.shingles:
                sim = self._story_cover(feats, member)
            if sim > 0 and (best is None or sim > best.similarity):
                best = StoryMatch(member.story_id, sim, key)
        return best
