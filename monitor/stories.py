"""Near-duplicate story clustering: one story per event, not one per copy.

The same wire story reaches us from many outlets with another headline, a trimmed summary, an outlet
suffix or a prefix such as "EXCLUSIVE:". :class:`StoryIndex` keeps the entries of the last ``window``
(72 h by default) in memory and answers "which existing story is this a copy of?".

Decision rule (chosen by measurement on ``bench/data``; see ``bench/bench_dedup.py`` and ``docs/stories.md``):

* every entry becomes a bag of content terms (stemmed, common actor synonyms folded: Washington/US/American,
  Beijing/China/Chinese, ...), headline terms counting double. Terms are weighted by IDF over the documents of
  the window plus a fixed prior from the corpus shipped with the package, so a shared rare term ("Entity
  List", "toolmakers", "high-bandwidth memory", "140") weighs far more than "China" or "US";
* candidates are the stories of the members that share one of the entry's rarest terms (inverted index);
* an entry joins a candidate story when, against the story as a whole (its best-matching member, and the
  vocabulary of all its members):

  - a summary is a trimmed copy of a member's summary (word-trigram containment >= ``TEXT_SAME``), or
  - the weighted cosine with the best member is >= ``COS_SAME``, or
  - the story mentions at least ``COVER_SAME`` of the weight of the entry's headline (or the entry mentions
    that much of the lead's headline) and the cosine is >= ``COS_SUPPORT``;

  unless the two disagree on specifics: different numbers in both headlines, names in both headlines that
  the other side never mentions, or conflicting stages of one process in the headlines ("proposes" vs
  "finalises", "charged" vs "found guilty", "elected" vs "sworn in");
* among several qualifying stories the best score wins; the others it matches just as clearly
  (``BRIDGE_SAME``), and small headline-only stories whose headline the grown story's whole vocabulary covers,
  are reported as ``bridges``: the caller merges them into the oldest (:meth:`StoryIndex.merge`).

Entries are matched and indexed at :func:`story_time` (published, capped at first seen), live and on rebuild.

The index is pure and in memory; the store rebuilds it at start by calling :meth:`StoryIndex.add` for the
entries inside the window. Memory is bounded by the window: members older than it are evicted.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import html
import json
import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources

SHINGLE_N = 3  # word trigrams for summary containment
TEXT_SAME = 0.5  # summary-trigram containment that alone means "same story" (a trimmed copy)
COS_SAME = 0.55  # IDF-weighted cosine with a member that means "same story" absent contrary evidence
COVER_SAME = 0.6  # share of a headline's weight that the other side mentions ...
COS_SUPPORT = 0.2  # ... with at least this cosine, also means "same story"
TITLE_BOOST = 2.0  # headline terms count this much more than summary terms
MIN_SUMMARY_TOKENS = 8  # a summary shorter than this is treated as missing
RARE_LOOKUPS = 6  # rarest terms of an entry used to look up candidates
RARE_TITLE_LOOKUPS = 3  # ... and its rarest headline terms beyond those
POSTING_CAP = 1000  # terms in more window documents than this are too common to look up
CANDIDATES = 10  # candidate stories judged per entry (those sharing the most rare-term weight)
MEMBERS_COMPARED = 40  # newest members of a candidate story compared one by one
NAME_IDF = 4.0  # a capitalized headline word this rare counts as a name for the veto
BRIDGE_SAME = COS_SAME  # an entry this similar to two stories (not by the weaker cover rule) bridges them
MAX_BRIDGES = 2  # stories merged into the best one by one entry at most
HEADLINE_STORY_MAX = 2  # a story of at most this many headline-only entries may join by story profile
DF_CACHE_MAX = 500_000  # cached per-term document-frequency parts before the cache is cleared

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
    re.compile(r"(?:read more|continue reading|read the full (?:story|article)|full story)\s*"
               r'(?:\.{3}|[»"]|>>|→)?\s*$', re.IGNORECASE),
    re.compile(r"\[(?:\.{3}|…)\]"),
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
# Word sequences folded into one term, so that the usual ways of naming one actor or thing match.
_PHRASES: dict[tuple[str, ...], str] = {
    ("united", "states"): "us", ("white", "house"): "us", ("biden", "administration"): "us",
    ("trump", "administration"): "us", ("commerce", "department"): "commerce", ("commerce", "dept"): "commerce",
    ("department", "of", "commerce"): "commerce", ("entity", "list"): "entitylist",
    ("trade", "blacklist"): "entitylist", ("high", "bandwidth", "memory"): "hbm",
    ("people", "republic", "of", "china"): "china",
    **{(w, "down"): "lockdown" for w in ("lock", "locks", "locked", "locking")},
}
_PHRASE_LONGEST = max(len(k) for k in _PHRASES)
_PHRASE_FIRST = frozenset(k[0] for k in _PHRASES)
_SYNONYMS = {
    "america": "us", "american": "us", "americans": "us", "washington": "us", "usa": "us",
    "chinese": "china", "beijing": "china", "prc": "china",
    "bn": "billion", "mn": "million", "pct": "percent", "percentage": "percent",
    "blacklist": "entitylist", "blacklists": "entitylist", "blacklisted": "entitylist",
    "blacklisting": "entitylist",
    "curb": "restrict", "curbs": "restrict", "restriction": "restrict", "restrictions": "restrict",
    "limit": "restrict", "limits": "restrict", "ban": "restrict", "bans": "restrict", "banned": "restrict",
    # the wire verbs of restriction and of listing, which rewrites swap freely
    "bar": "restrict", "bars": "restrict", "barred": "restrict", "barring": "restrict",
    "block": "restrict", "blocks": "restrict", "blocked": "restrict", "blocking": "restrict",
    "restricts": "restrict", "restricted": "restrict", "restricting": "restrict",
    "prohibit": "restrict", "prohibits": "restrict", "prohibited": "restrict",
    "adds": "add", "added": "add", "adding": "add", "puts": "add", "put": "add", "putting": "add",
    "places": "add", "placed": "add", "placing": "add",
    "hacker": "hack", "hackers": "hack", "hacked": "hack", "hacking": "hack",
    "breach": "hack", "breached": "hack", "breaches": "hack",
    "defence": "defense", "licence": "license", "licences": "license", "programme": "program",
    "firms": "company", "firm": "company", "companies": "company", "entities": "company",
    "semiconductor": "chip", "semiconductors": "chip", "chipmaker": "chip", "chipmakers": "chip",
    "nanometre": "nm", "nanometer": "nm",
}
_STOP = frozenset(
    ["a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "from", "by", "with", "as", "is",
     "are", "was", "were", "be", "been", "has", "have", "had", "it", "its", "this", "that", "these", "those",
     "into", "over", "after", "amid", "about", "against", "than", "then", "up", "out", "off", "new", "says",
     "said", "say", "report", "reports", "reported", "could", "would", "will", "may", "might", "can", "not",
     "no", "more", "most", "some", "all", "any", "what", "why", "how", "who", "which", "while", "since",
     "near", "under", "via", "s", "their", "his", "her", "they", "he", "she", "we", "our", "also", "other"])
# Stages of one process: two headlines at conflicting stages are two stories, however similar the rest.
_STAGES = {
    "propose": "proposed", "proposal": "proposed", "draft": "proposed",
    "provisional": "provisional", "preliminary": "provisional",
    "final": "final", "finalise": "final", "finalize": "final", "finalis": "final", "finaliz": "final",
    "charge": "charged", "indict": "charged", "arrest": "charged",
    "guilty": "verdict", "convict": "verdict", "sentence": "verdict", "jail": "verdict", "acquit": "verdict",
    "plead": "verdict", "verdict": "verdict",
    "begin": "start", "start": "start", "open": "start",
    "elect": "elected", "election": "elected", "sworn": "inaugurated", "inaugurate": "inaugurated",
    "inauguration": "inaugurated",
    "suspend": "suspended", "restore": "restored", "resume": "restored", "lift": "restored",
    "unveil": "introduced", "introduce": "introduced", "rescind": "rescinded", "revoke": "rescinded",
    "scrap": "rescinded", "repeal": "rescinded", "withdraw": "rescinded",
}
_ORDINALS = {"first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th"}
_CONFLICTS = {frozenset(p) for p in [("proposed", "final"), ("provisional", "final"), ("charged", "verdict"),
                                     ("start", "verdict"), ("elected", "inaugurated"),
                                     ("suspended", "restored"), ("introduced", "rescinded"),
                                     ("proposed", "rescinded"), ("final", "rescinded")]}


@dataclass(frozen=True)
class StoryMatch:
    """The best existing story for a new entry: its id, the score, and the member entry that matched.
    ``bridges``: other stories the entry is just as clearly a copy of (see ``BRIDGE_SAME``): the entry shows
    they are one story, and the caller merges them."""

    story_id: int
    similarity: float
    entry_key: int
    bridges: tuple[int, ...] = ()


_Vector = tuple[dict[str, float], float]  # term weights and their norm


@dataclass(frozen=True)
class _Features:
    title: frozenset[str]  # content terms of the headline (stemmed, synonyms folded)
    body: frozenset[str]  # content terms of a substantive summary; empty for a headline-only entry
    numbers: frozenset[str]  # numbers in the headline
    names: frozenset[str]  # capitalized headline words, as terms
    stages: frozenset[str]  # process stages named in the headline
    shingles: frozenset[int]  # hashed word trigrams of a substantive summary
    exact: int  # hash of the whole normalized text: identical copies always match
    terms: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", self.title | self.body)


@dataclass(frozen=True)
class _Member:
    key: int
    story_id: int
    when: datetime
    features: _Features
    vector: _Vector  # weighted with the IDF of the moment it was added: the window drifts slowly


def story_time(published: datetime, first_seen: datetime) -> datetime:
    """The time an entry is matched and indexed at: its publication time, but never later than when we first
    saw it. Published time keeps two same-topic stories weeks apart apart even when a new feed brings the old
    one today; the cap keeps a publisher's clock error from moving the window (and evicting everything).
    An entry published long ago is indexed in the past and leaves the index at the next eviction."""
    return min(published, first_seen)


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


def _term_tokens(text: str) -> list[str]:
    """Tokens for term extraction: like :func:`_tokens`, with the word sequences of _PHRASES folded."""
    return _fold_phrases(_tokens(text.replace("-", " ")))


def _fold_phrases(words: list[str]) -> list[str]:
    """Fold the word sequences of _PHRASES into one term each."""
    if _PHRASE_FIRST.isdisjoint(words):
        return words
    out, i = [], 0
    while i < len(words):
        if words[i] not in _PHRASE_FIRST:
            out.append(words[i])
            i += 1
            continue
        for n in range(min(_PHRASE_LONGEST, len(words) - i), 1, -1):
            folded = _PHRASES.get(tuple(words[i:i + n]))
            if folded is not None:
                out.append(folded)
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


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


_TERM_OF: dict[str, str] = {}  # word -> term ("" for a stop word); cleared when it grows past _TERM_CACHE_MAX
_TERM_CACHE_MAX = 200_000


def _term_of(word: str) -> str:
    if len(_TERM_OF) > _TERM_CACHE_MAX:
        _TERM_OF.clear()
    term = _TERM_OF[word] = "" if word in _STOP else _stem(word)
    return term


def _terms(words: Iterable[str]) -> frozenset[str]:
    get = _TERM_OF.get
    found = {term if (term := get(w)) is not None else _term_of(w) for w in words}
    found.discard("")
    return frozenset(found)


def _trigrams(words: list[str]) -> frozenset[int]:
    """Hashed :func:`shingles` of a token list (without joining and splitting it again)."""
    n = SHINGLE_N
    if len(words) <= n:
        return _hash([" ".join(words)]) if words else frozenset()
    return frozenset(zlib.crc32(" ".join(words[i: i + n]).encode()) for i in range(len(words) - n + 1))


def _hash(items: Iterable[str]) -> frozenset[int]:
    return frozenset(zlib.crc32(s.encode()) for s in items)


def _features(title: str, summary: str) -> _Features:
    clean_title = _strip_outlet(_fold(title))
    clean_summary = _clean_summary(summary)
    # Tokens once per text. Term tokens are the same tokens with the phrases folded: the dashes that
    # _term_tokens turns into spaces never reach a token anyway (only a stray "s", a stop word, differs).
    title_tokens, body_tokens = _tokens(clean_title), _tokens(clean_summary)
    words = _fold_phrases(title_tokens)
    body_words = _fold_phrases(body_tokens)
    if len(body_words) < MIN_SUMMARY_TOKENS:
        body_words = []
    caps = [w for w in re.findall(r"\b[A-Z][\w&-]*", clean_title) if w.lower() not in _STOP]
    title_terms = _terms(words)
    return _Features(
        title=title_terms,
        body=_terms(body_words),
        numbers=frozenset(w for w in words if w[:1].isdigit()) | {_ORDINALS[w] for w in words if w in _ORDINALS},
        names=(_terms(t for w in caps for t in _fold_phrases(_TOKEN.findall(w.lower()))) & title_terms)
        - {"us", "china"},
        stages=frozenset(_STAGES[t] for t in title_terms if t in _STAGES),
        shingles=_trigrams(body_tokens) if body_words else frozenset(),
        exact=zlib.crc32(" ".join(title_tokens + body_tokens).encode()),
    )


def _containment(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


@functools.lru_cache(maxsize=1)
def _prior() -> tuple[int, Counter[str]]:
    """Document frequencies of the corpus shipped in the package: an IDF prior for a young, small window."""
    df: Counter[str] = Counter()
    n = 0
    for path in sorted(resources.files("monitor").joinpath("data", "corpus").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".jsonl"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                feats = _features(record.get("title", ""), record.get("summary", ""))
                df.update(feats.terms)
                n += 1
    return n, df


class StoryIndex:
    """In-memory near-duplicate index over the entries of the last ``window``."""

    def __init__(self, window: timedelta = timedelta(hours=72), use_prior: bool = True) -> None:
        self.window = window
        self._prior_n, self._prior_df = _prior() if use_prior else (0, Counter())
        self._members: dict[int, _Member] = {}
        self._story_of: dict[int, int] = {}  # member key -> story id (a plain dict: the hot lookup)
        # idf(t) = log(N + prior_n + 1) - log(df(t) + 1) + 1: the first part is kept up to date on every add
        # and removal, the second is cached per term and dropped when the term's postings change.
        self._log_total = math.log(self._prior_n + 1)
        self._df_part: dict[str, float] = {}
        self._postings: dict[str, set[int]] = {}  # term -> member keys (title and summary terms)
        self._exact: dict[int, set[int]] = {}  # normalized-text hash -> member keys
        self._heap: list[tuple[datetime, int]] = []
        self._story_members: dict[int, dict[int, None]] = {}  # insertion-ordered member keys
        self._story_terms: dict[int, Counter[str]] = {}  # every term the story's members mention
        self._newest: datetime | None = None
        self._last: tuple[str, str, _Features] | None = None  # match() then add() reuse
        self._last_vector: tuple[_Features, _Vector] | None = None

    def __len__(self) -> int:
        return len(self._members)

    # -- public ------------------------------------------------------------------------------------------

    def match(self, title: str, summary: str, when: datetime) -> StoryMatch | None:
        """The best story within the window that this entry is a copy of, or None for a new story."""
        return self._best(self._analyse(title, summary), when)

    def add(self, entry_key: int, story_id: int, title: str, summary: str, when: datetime) -> None:
        """Remember an entry as a member of ``story_id``; evicts members older than the window."""
        if entry_key in self._members:
            self._remove(entry_key)
        feats = self._analyse(title, summary)
        self._members[entry_key] = _Member(entry_key, story_id, when, feats, self._vector(feats))
        self._story_of[entry_key] = story_id
        self._log_total = math.log(len(self._members) + self._prior_n + 1)
        df_part = self._df_part
        if len(df_part) > DF_CACHE_MAX:  # terms seen only in queries would pile up
            df_part.clear()
        for term in feats.terms:
            self._postings.setdefault(term, set()).add(entry_key)
            df_part.pop(term, None)
        self._exact.setdefault(feats.exact, set()).add(entry_key)
        self._story_members.setdefault(story_id, {})[entry_key] = None
        self._story_terms.setdefault(story_id, Counter()).update(feats.terms)
        heapq.heappush(self._heap, (when, entry_key))
        if self._newest is None or when > self._newest:
            self._newest = when
            self.evict(when)

    def discard(self, entry_key: int) -> bool:
        """Forget one entry (deleted or pruned); False when the index did not hold it."""
        if entry_key not in self._members:
            return False
        self._remove(entry_key)
        return True

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

    # -- bookkeeping -------------------------------------------------------------------------------------

    def _remove(self, key: int) -> None:
        member = self._members.pop(key)
        del self._story_of[key]
        self._log_total = math.log(len(self._members) + self._prior_n + 1)
        for term in member.features.terms:
            self._df_part.pop(term, None)
            posting = self._postings[term]
            posting.discard(key)
            if not posting:
                del self._postings[term]
        same = self._exact[member.features.exact]
        same.discard(key)
        if not same:
            del self._exact[member.features.exact]
        story = member.story_id
        del self._story_members[story][key]
        if not self._story_members[story]:
            del self._story_members[story]
            del self._story_terms[story]
        else:
            vocab = self._story_terms[story]
            vocab.subtract(member.features.terms)
            self._story_terms[story] = +vocab

    def _analyse(self, title: str, summary: str) -> _Features:
        if self._last is not None and self._last[0] == title and self._last[1] == summary:
            return self._last[2]
        feats = _features(title, summary)
        self._last = (title, summary, feats)
        return feats

    # -- similarity --------------------------------------------------------------------------------------

    def _idf(self, term: str) -> float:
        part = self._df_part.get(term)
        if part is None:
            part = self._df_part_of(term)
        return self._log_total + part

    def _df_part_of(self, term: str) -> float:
        df = len(self._postings.get(term, ())) + self._prior_df.get(term, 0)
        part = self._df_part[term] = 1.0 - math.log(df + 1)
        return part

    def _vector(self, feats: _Features) -> _Vector:
        if self._last_vector is not None and self._last_vector[0] is feats:
            return self._last_vector[1]
        get, log_total, title = self._df_part.get, self._log_total, feats.title
        vec: dict[str, float] = {}
        for t in feats.terms:
            part = get(t)
            weight = log_total + (self._df_part_of(t) if part is None else part)
            vec[t] = weight * TITLE_BOOST if t in title else weight
        vector = vec, math.sqrt(sum(w * w for w in vec.values()))
        self._last_vector = (feats, vector)
        return vector

    @staticmethod
    def _cosine(a: _Vector, b: _Vector) -> float:
        (va, na), (vb, nb) = a, b
        if not na or not nb:
            return 0.0
        return sum(va[t] * vb[t] for t in va.keys() & vb.keys()) / (na * nb)

    def _cover(self, terms: frozenset[str], known: Iterable[str] | Counter[str]) -> float:
        """IDF-weighted share of ``terms`` (a headline) that ``known`` mentions."""
        total = sum(self._idf(t) for t in terms)
        return sum(self._idf(t) for t in terms if t in known) / total if total else 0.0

    def _conflict(self, a: _Features, b: _Features, known_a: Iterable[str] | Counter[str],
                  known_b: Iterable[str] | Counter[str]) -> bool:
        """True when the headlines disagree on specifics (``known_x`` is everything side x mentions): both
        name numbers and none is shared; conflicting stages of one process; or each names a number or a
        rare name that the other side never mentions."""
        if a.numbers and b.numbers and not a.numbers & b.numbers:
            return True
        if any(frozenset((x, y)) in _CONFLICTS for x in a.stages for y in b.stages) \
                and not a.stages & b.stages:
            return True
        specific_a = {t for t in a.names if t not in known_b and self._idf(t) >= NAME_IDF} or \
            {n for n in a.numbers if n not in known_b}
        specific_b = {t for t in b.names if t not in known_a and self._idf(t) >= NAME_IDF} or \
            {n for n in b.numbers if n not in known_a}
        return bool(specific_a) and bool(specific_b)

    def _judge(self, feats: _Features, vec: _Vector, story: int,
               when: datetime) -> tuple[float, int]:
        """Score of the entry against one candidate story (0 when it is not the same story), and the member.

        Two passes with the decision of one: the cheap figures (text containment, cosine) first, so that the
        common hopeless candidate costs no veto check; the vetoes only when some member could qualify."""
        vocab = self._story_terms[story]
        keys = list(self._story_members[story])
        recent = keys[-MEMBERS_COMPARED:] if len(keys) > MEMBERS_COMPARED else keys
        if len(recent) > 2 and not self._may_match(feats, vec, vocab, recent):
            return 0.0, keys[0]
        figures = []
        hopeful = False
        for key in recent:
            member = self._members[key]
            if abs(when - member.when) > self.window:
                continue
            text = 1.0 if feats.exact == member.features.exact else \
                _containment(feats.shingles, member.features.shingles)
            cos = 0.0 if text >= TEXT_SAME else self._cosine(vec, member.vector)
            hopeful = hopeful or text >= TEXT_SAME or cos >= COS_SUPPORT
            figures.append((key, member, text, cos))
        if not hopeful:
            return 0.0, keys[0]
        best, best_key = 0.0, keys[0]
        for key, member, text, cos in figures:
            if text >= TEXT_SAME:
                return 1.0 + text, key
            if self._conflict(feats, member.features, feats.terms, vocab):
                return 0.0, key
            if cos > best:
                best, best_key = cos, key
        if best >= COS_SAME:
            return best, best_key
        if best >= COS_SUPPORT:
            lead = self._members[keys[0]]
            cover = max(self._cover(feats.title, vocab), self._cover(lead.features.title, feats.terms))
            if cover >= COVER_SAME:
                return best, best_key
        return 0.0, best_key

    def _may_match(self, feats: _Features, vec: _Vector, vocab: Counter[str], keys: list[int]) -> bool:
        """Cheap necessary condition for :meth:`_judge`. By Cauchy-Schwarz the cosine with any member is at
        most the norm of the entry's vector restricted to the terms the story mentions, over its full norm;
        below ``COS_SUPPORT`` only an identical text or a trimmed summary can still make it the same story."""
        weights, norm = vec
        if norm and math.sqrt(sum(weights[t] ** 2 for t in vocab.keys() & feats.terms)) >= COS_SUPPORT * norm:
            return True
        members = self._members
        return any(feats.exact == members[k].features.exact or
                   _containment(feats.shingles, members[k].features.shingles) >= TEXT_SAME for k in keys)

    def _candidates(self, feats: _Features) -> set[int]:
        """Stories sharing the entry's rarest terms; the ``CANDIDATES`` sharing the most weight of them."""
        sized = sorted((len(p), t) for t in feats.terms if (p := self._postings.get(t)) is not None)
        # the rarest terms overall, and the rarest headline terms too: a summary full of terms that only one
        # story mentions would otherwise hide the other stories that share the headline
        lookups = sized[:RARE_LOOKUPS]
        lookups += [x for x in sized[RARE_LOOKUPS:] if x[1] in feats.title][:RARE_TITLE_LOOKUPS]
        hits: dict[int, float] = {}
        for size, term in lookups:
            if size > POSTING_CAP:
                continue
            weight = self._idf(term) * (TITLE_BOOST if term in feats.title else 1.0)
            for story in set(map(self._story_of.__getitem__, self._postings[term])):
                hits[story] = hits.get(story, 0.0) + weight
        found = set(heapq.nlargest(CANDIDATES, hits, key=hits.__getitem__))
        return found | {self._members[k].story_id for k in self._exact.get(feats.exact, ())}

    def _best(self, feats: _Features, when: datetime) -> StoryMatch | None:
        vec = self._vector(feats)
        scored = []
        candidates = self._candidates(feats)
        for story in candidates:
            sim, key = self._judge(feats, vec, story, when)
            if sim > 0:
                scored.append((sim, story, key))
        if not scored:
            return None
        scored.sort(reverse=True)
        sim, story, key = scored[0]
        bridges = tuple(s for score, s, _ in scored[1:MAX_BRIDGES + 1] if score >= BRIDGE_SAME) \
            if sim >= BRIDGE_SAME else ()
        if len(bridges) < MAX_BRIDGES:
            found = {s for _, s, _ in scored}
            bridges += tuple(other for other in candidates - found
                             if self._headline_story_of(other, story, feats, vec, when))[:MAX_BRIDGES - len(bridges)]
        return StoryMatch(story, min(sim, 1.0), key, bridges)

    def _headline_story_of(self, other: int, story: int, feats: _Features, vec: _Vector, when: datetime) -> bool:
        """Story-level profile: is ``other``, a story of headline-only entries, the same story as ``story``
        once the entry joins it? A lone headline is judged against single members badly (a reworded headline
        shares little with any one summary), but the vocabulary of the whole story (all members and the
        entry) may mention most of its weight. Same rule as :meth:`_judge` (coverage and a supporting
        cosine, no veto), applied to the other story's lead and the grown story."""
        keys = list(self._story_members[other])
        if len(keys) > HEADLINE_STORY_MAX:
            return False
        members = [self._members[k] for k in keys]
        if any(m.features.body or abs(when - m.when) > self.window for m in members):
            return False
        lead = members[0]
        profile = self._story_terms[story] + Counter(feats.terms)
        if self._cover(lead.features.title, profile) < COVER_SAME:
            return False
        mine = [self._members[k] for k in list(self._story_members[story])[-MEMBERS_COMPARED:]]
        cos = max([self._cosine(lead.vector, vec)] + [self._cosine(lead.vector, m.vector) for m in mine])
        if cos < COS_SUPPORT:
            return False
        theirs = self._story_terms[other]
        return not any(self._conflict(lead.features, f, theirs, profile) for f in [feats, *(m.features for m in mine)])

    def merge(self, keep: int, gone: int) -> None:
        """Story ``gone`` was merged into ``keep`` (a bridging entry): its members now belong to ``keep``."""
        keys = self._story_members.pop(gone, None)
        if keys is None:
            return
        terms = self._story_terms.pop(gone)
        into = self._story_members.setdefault(keep, {})
        for key in keys:
            self._members[key] = dataclasses.replace(self._members[key], story_id=keep)
            self._story_of[key] = keep
            into[key] = None
        self._story_terms.setdefault(keep, Counter()).update(terms)
        # the lead (first key) stays the oldest member
        self._story_members[keep] = dict.fromkeys(sorted(into, key=lambda k: (self._members[k].when, k)))
