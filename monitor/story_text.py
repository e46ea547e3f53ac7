"""How an entry is read for story clustering: its headline and summary normalised (outlet names,
bylines and boilerplate removed), folded to stemmed terms (the usual rewordings of wire copy made one term,
see :mod:`monitor.paraphrase`), and the features :class:`~monitor.stories.StoryIndex` compares entries by.

:func:`analyse` runs in the parser processes, so this module imports nothing of the daemon but the lexicon.
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources

from . import paraphrase

SHINGLE_N = 3  # word trigrams for summary containment
MIN_SUMMARY_TOKENS = 8  # a summary shorter than this is treated as missing

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
# Boilerplate. The two anchored at the end are tried only where they can match (a substring test, the last
# characters): scanning every position of every summary for them cost more than the rest of the cleaning.
_POST_FOOTER = re.compile(r"\s*The post .{1,300}? appeared first on .{1,120}?\.?\s*$", re.IGNORECASE | re.DOTALL)
_READ_MORE = re.compile(r"(?:read more|continue reading|read the full (?:story|article)|full story)\s*"
                        r'(?:\.{3}|[»"]|>>|→)?\s*$', re.IGNORECASE)
_READ_MORE_SPAN = 80  # characters at the end of a summary where _READ_MORE can start
_BOILER = [
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
_US = re.compile(r"\bu\.s\.(?:a\.)?")
# a number keeps a single trailing letter: "2024A" and "2024B" are two designations, not one year
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*(?:[a-z](?![a-z0-9]))?|[a-z0-9]+")
# ... except after a currency sign, where it is a magnitude: "$5B" is "5 billion"
_AMOUNT = re.compile(r"([$\u20ac\u00a3\u00a5]\s?\d+(?:[.,]\d+)*)\s?([bmk])\b")
_MAGNITUDE = {"b": "billion", "m": "million", "k": "thousand"}
# Word sequences folded into one term, so that the usual ways of naming one actor or thing match.
_PHRASES: dict[tuple[str, ...], str] = {
    ("united", "states"): "us", ("white", "house"): "us", ("biden", "administration"): "us",
    ("trump", "administration"): "us", ("commerce", "department"): "commerce", ("commerce", "dept"): "commerce",
    ("department", "of", "commerce"): "commerce", ("entity", "list"): "entitylist",
    ("trade", "blacklist"): "entitylist", ("high", "bandwidth", "memory"): "hbm",
    ("people", "republic", "of", "china"): "china", ("european", "union"): "eu",
    ("top", "court"): "supremecourt", ("roll", "back"): "cut",
    ("kicked", "out"): "expel", ("kicks", "out"): "expel", ("electric", "vehicle"): "car",
    ("electric", "vehicles"): "car", ("electric", "car"): "car", ("electric", "cars"): "car",
    **{(w, "down"): "lockdown" for w in ("lock", "locks", "locked", "locking")},
}
_PHRASES.update(paraphrase.PHRASES)  # the general news-paraphrase lexicon
_PHRASE_LONGEST = max(len(k) for k in _PHRASES)
_PHRASE_FIRST = frozenset(k[0] for k in _PHRASES)
_SYNONYMS = {
    "america": "us", "american": "us", "americans": "us", "washington": "us", "usa": "us",
    "chinese": "china", "beijing": "china", "prc": "china",
    # the other countries named by their capital or their adjective, as headlines alternate them
    "taipei": "taiwan", "taiwanese": "taiwan", "manila": "philippines", "filipino": "philippines",
    "filipinos": "philippines", "philippine": "philippines", "ottawa": "canada", "canadian": "canada",
    "dutch": "netherlands", "tokyo": "japan", "japanese": "japan", "moscow": "russia", "kremlin": "russia",
    "russian": "russia", "german": "germany", "berlin": "germany", "british": "uk", "britain": "uk",
    "london": "uk", "brussels": "eu", "europe": "eu", "kyiv": "ukraine", "ukrainian": "ukraine",
    "australian": "australia", "canberra": "australia", "indian": "india", "vietnamese": "vietnam",
    "hanoi": "vietnam", "israeli": "israel", "iranian": "iran", "tehran": "iran",
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
    # more of the words that rewrites of one headline swap freely (verbs and nouns of the wire)
    **dict.fromkeys(["detain", "detains", "detained", "detaining", "detention"], "arrest"),
    **dict.fromkeys(["espionage", "spying", "spies"], "spy"),
    **dict.fromkeys(["exercise", "exercises", "wargames"], "drill"),
    **dict.fromkeys(["duty", "duties", "levy", "levies"], "tariff"),
    **dict.fromkeys(["slap", "slaps", "slapped", "imposes", "imposed", "imposing"], "impose"),
    **dict.fromkeys(["probes", "investigation", "investigations", "investigate", "investigates",
                     "investigated", "investigating", "inquiry"], "probe"),
    **dict.fromkeys(["evs", "vehicle", "vehicles", "cars", "auto", "autos"], "car"),
    **dict.fromkeys(["technology", "technologies"], "tech"),
    **dict.fromkeys(["cuts", "cutting", "lower", "lowers", "lowered", "reduce", "reduces", "reduced",
                     "slash", "slashes", "slashed"], "cut"),
    **dict.fromkeys(["approve", "approves", "approved", "passes", "passed"], "pass"),
    **dict.fromkeys(["halt", "halts", "halted", "pause", "pauses", "paused"], "suspend"),
    **dict.fromkeys(["cyberattack", "cyberattacks", "intrusion", "intrusions"], "hack"),
    **dict.fromkeys(["allege", "alleges", "alleged", "allegedly"], "accuse"),
    **dict.fromkeys(["legislator", "legislators", "mp", "mps"], "lawmaker"),
    "supreme": "supremecourt", "justices": "supremecourt", "fighter": "jet", "legislation": "law",
    **dict.fromkeys(["permit", "permits", "licenses"], "license"),
    "economic": "economy", "growth": "grow",
    **dict.fromkeys(["vessel", "vessels", "boat", "boats", "ships"], "ship"),
    **dict.fromkeys(["sale", "sales", "sells", "selling", "sold", "divest", "divests", "divestiture",
                     "divestment"], "sell"),
    **dict.fromkeys(["risky", "dangerous"], "unsafe"), "manoeuvre": "maneuver", "manoeuvres": "maneuver",
    # ordinals as the numbers they are, so that a headline's "first" is known to a text that says "first"
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th",
    **paraphrase.SYNONYMS,
}
# Adjectives of a country (folded into the country by _SYNONYMS): "Canada expels Chinese diplomat" and
# "China expels Canadian diplomat" have the same terms, but the adjective shows who acts on whom.
_ADJECTIVES = frozenset(["chinese", "american", "canadian", "taiwanese", "filipino", "philippine", "dutch",
                         "japanese", "russian", "german", "british", "ukrainian", "australian", "indian",
                         "vietnamese", "israeli", "iranian"])
_COUNTRY_WORDS = ["us", "china", "taiwan", "philippines", "canada", "netherlands", "japan", "russia", "germany",
                  "uk", "eu", "ukraine", "australia", "india", "vietnam", "israel", "iran"]
_STOP = frozenset(
    ["a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "from", "by", "with", "as", "is",
     "are", "was", "were", "be", "been", "has", "have", "had", "it", "its", "this", "that", "these", "those",
     "into", "over", "after", "amid", "about", "against", "than", "then", "up", "out", "off", "new", "says",
     "said", "say", "report", "reports", "reported", "could", "would", "will", "may", "might", "can", "not",
     "no", "more", "most", "some", "all", "any", "what", "why", "how", "who", "which", "while", "since",
     "near", "under", "via", "s", "their", "his", "her", "they", "he", "she", "we", "our", "also", "other"])
# Stages of one process: two headlines at conflicting stages are two stories, however similar the rest
# (the words; _STAGES below maps their terms).
_STAGE_WORDS = {
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
    "end": "ended",
}
_ORDINALS = {"first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th"}
_NUMBER_WORDS = _ORDINALS | paraphrase.NUMBER_WORDS  # words a headline's numbers are also written as
@dataclass(frozen=True)
class _Features:
    title: frozenset[str]  # content terms of the headline (stemmed, synonyms folded)
    body: frozenset[str]  # content terms of a substantive summary; empty for a headline-only entry
    numbers: frozenset[str]  # numbers in the headline
    # capitalized headline words, as terms; and, marked by a prefix, the names of the source a headline
    # attributes its claim to (SOURCE) and the items of a list it gives (LISTED)
    names: frozenset[str]
    stages: frozenset[str]  # process stages named in the headline
    roles: frozenset[tuple[str, str]]  # (country, other country) when a headline opens "<country> ... <adjective>"
    shingles: frozenset[int] | array[int]  # hashed word trigrams of a substantive summary (distinct)
    exact: int  # hash of the whole normalized text: identical copies always match
    terms: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", self.title | self.body)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Parser processes analyse entries and send the features back: as a few strings and one bytes object
        # they unpickle several times faster than as frozensets (terms never contain spaces).
        return _unpack_features, (" ".join(self.title), " ".join(self.body), " ".join(self.numbers),
                                  " ".join(self.names), " ".join(self.stages), tuple(self.roles),
                                  array("I", self.shingles).tobytes(), self.exact)


def _unpack_features(title: str, body: str, numbers: str, names: str, stages: str,
                     roles: tuple[tuple[str, str], ...], shingles: bytes, exact: int) -> _Features:
    hashes = array("I")
    hashes.frombytes(shingles)
    # Not interned, and the trigrams left an array: this runs in the daemon for every parsed entry. The index
    # stores its own copy of each term string (_Term.term), and makes a set of the trigrams only to compare.
    return _Features(frozenset(title.split()), frozenset(body.split()), frozenset(numbers.split()),
                     frozenset(names.split()), frozenset(stages.split()), frozenset(roles), hashes, exact)


StoryFeatures = _Features  # what the parser processes hand to StoryIndex.prime (see analyse)


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
    text = text.lower()
    if "u.s." in text:
        text = _US.sub("us", text)
    text = text.replace("u.k.", "uk").replace("'s ", " ")
    if "$" in text or "\u20ac" in text or "\u00a3" in text or "\u00a5" in text:
        text = _AMOUNT.sub(lambda m: f"{m.group(1)} {_MAGNITUDE[m.group(2)]}", text)
    tokens = _TOKEN.findall(text)
    return [t.replace(",", "") for t in tokens] if "," in text else tokens


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
    if "appeared first on" in text.lower():
        text = _POST_FOOTER.sub(" ", text)
    if m := _READ_MORE.search(text, max(0, len(text) - _READ_MORE_SPAN)):
        text = text[: m.start()] + " "
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
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        word = word[:-2]  # "launches", "passes": the "e" belongs to the ending, not the stem
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    # a final silent "e" goes, so that "charge", "charges" and "charged" (stripped to "charg") meet
    return word[:-1] if len(word) > 3 and word.endswith("e") and not word.endswith("ee") else word


# keyed by term, so that every inflection the stemmer folds together names the stage
_STAGES = {_stem(word): stage for word, stage in _STAGE_WORDS.items()}
_COUNTRIES = frozenset(map(_stem, _COUNTRY_WORDS))
# term -> the terms it implies ("pentagon" -> us, military), see paraphrase.IMPLIES
IMPLIES = {_stem(word): frozenset(map(_stem, implied)) for word, implied in paraphrase.IMPLIES.items()}
IMPLYING = frozenset(IMPLIES)
_DATE_TERMS = frozenset(map(_stem, paraphrase.DATE_WORDS))
# Acts of force named in a headline (raw word -> act), kept with the stages; the terms that name each act
_ACTS = {word: "act:" + act for word, act in paraphrase.ACTS.items()}
ACT_TERMS: dict[str, frozenset[str]] = {
    act: frozenset(_stem(w) for w, a in _ACTS.items() if a == act) for act in set(_ACTS.values())}


class _TermCache(dict[str, str]):
    """word -> term ("" for a stop word), filled on first sight; cleared when it grows past ``limit``.
    A dict subclass so that a lookup that hits stays in C (``map(cache.__getitem__, words)``)."""

    limit = 200_000

    def __missing__(self, word: str) -> str:
        if len(self) > self.limit:
            self.clear()
        term = self[word] = "" if word in _STOP else _stem(word)
        return term


_TERM_OF = _TermCache()


def _terms(words: Iterable[str]) -> frozenset[str]:
    return frozenset(map(_TERM_OF.__getitem__, words)) - {""}


def _trigrams(words: list[str]) -> frozenset[int]:
    """CRC-32 of the word trigrams (:func:`shingles`) of a token list: the same in every process, since
    parser processes analyse entries too. (Mapped builtins only: no Python-level loop per trigram.)"""
    if len(words) <= SHINGLE_N:
        return frozenset({zlib.crc32(" ".join(words).encode())}) if words else frozenset()
    return frozenset(map(zlib.crc32, map(str.encode, map(" ".join, zip(words, words[1:], words[2:])))))


def analyse(title: str, summary: str) -> StoryFeatures:
    """The features the index compares an entry by; computed in the parser processes and handed to
    :meth:`StoryIndex.prime`, so that the one thread that matches and stores does not compute them."""
    return _features(title, summary)


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
    event, source = _split_attribution(clean_title)
    title_terms = _implied(_terms(words))
    body_terms = _implied(_terms(body_words))
    sources: frozenset[str] = frozenset()
    if source:
        # The source of a claim is context, not the event: its words count as summary words, and its names
        # disagree only with the source another headline names (see StoryIndex._conflict).
        source_terms = _terms(_fold_phrases(_tokens(source)))
        title_terms = _implied(_terms(_fold_phrases(_tokens(event))))
        body_terms = body_terms | (source_terms - title_terms)
        sources = frozenset([SOURCE, *(SOURCE + t for t in _names(source, source_terms))])
    names = _names(event, title_terms)
    if sources or " and " in event:
        names = names.union(sources, _listed(event, title_terms))
    return _Features(
        title=title_terms,
        body=body_terms,
        numbers=frozenset(w for w in words if w[:1].isdigit())
        | {_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS},
        names=names,
        stages=frozenset(_STAGES[t] for t in title_terms if t in _STAGES) | {_ACTS[w] for w in words if w in _ACTS},
        roles=_roles(words),
        shingles=_trigrams(body_tokens) if body_words else frozenset(),
        exact=zlib.crc32(" ".join(title_tokens + body_tokens).encode()),
    )


# A headline that ends by naming the source of its claim: "..., TechInsights finds", "..., WSJ reports",
# "..., according to Mandiant". The source is not what happened: two copies of one finding name it or not.
# (Only a named source: "..., department says" may be the actor, and "report" and "says" are stop words.)
_ATTRIBUTION = re.compile(
    r"(?:,|\s-)\s+(?:(?P<who>(?:the\s+)?[A-Z][\w&.'-]*(?:\s+[A-Z][\w&.'-]*){0,2})\s+(?i:says|said|finds|found|"
    r"reports|warns|claims|shows|suggests|reveals|confirms|estimates)|(?i:according to)\s+(?P<whom>(?:the\s+)?"
    r"[A-Z][\w&.'-]*(?:\s+[A-Z][\w&.'-]*){0,2}))\s*$")


def _split_attribution(title: str) -> tuple[str, str]:
    """The headline without a trailing attribution, and the attribution's words ("" when there is none)."""
    if "," not in title and " - " not in title:
        return title, ""
    m = _ATTRIBUTION.search(title)
    if m is None or m.start() == 0:
        return title, ""
    return title[: m.start()], m.group("who") or m.group("whom")


_CAPITALIZED = re.compile(r"\b[A-Z][\w&]*")
SOURCE = "src:"  # prefix of the names an attribution gives; alone, the mark that the headline has one


def _names(text: str, terms: frozenset[str]) -> frozenset[str]:
    """Capitalized headline words, as terms: the names a headline gives. A hyphen ends one ("China-linked"
    names China, not "linked"); weekdays and months are dates."""
    caps = [w for w in _CAPITALIZED.findall(text) if w.lower() not in _STOP]
    return (_terms(t for w in caps for t in _fold_phrases(_TOKEN.findall(w.lower()))) & terms) \
        - {"us", "china"} - _DATE_TERMS


LISTED = "and:"  # prefix of the items a headline lists ("gallium, germanium and antimony")


def _listed(event: str, title_terms: frozenset[str]) -> frozenset[str]:
    """The one-word items of the first list in the headline, as terms: "China bans gallium, germanium and
    antimony exports" lists gallium, germanium and antimony."""
    head, found, tail = event.partition(" and ")
    after = tail.split(None, 1)
    if not found or not after:
        return frozenset()
    words = [after[0]]
    for segment in reversed(head.split(",")):
        segment_words = segment.split()
        if not segment_words:
            break
        words.append(segment_words[-1])
        if len(segment_words) > 1:  # the list's first item ends this segment
            break
    return frozenset(LISTED + t for w in words for t in _terms(_TOKEN.findall(w.lower())) if t in title_terms)


def _implied(terms: frozenset[str]) -> frozenset[str]:
    """The terms with those that a named body implies ("pentagon": us, military; see paraphrase.IMPLIES)."""
    if IMPLYING.isdisjoint(terms):
        return terms
    return terms.union(*(IMPLIES[t] for t in IMPLYING.intersection(terms)))


def _roles(words: list[str]) -> frozenset[tuple[str, str]]:
    """(actor, other) for a headline that opens with a country and names another by its adjective ("Canada
    expels Chinese diplomat": canada acts on china). Two headlines with reversed roles are tit-for-tat
    stories, however alike their terms."""
    content = [w for w in words if w not in _STOP]
    if not content or content[0] in _ADJECTIVES or (actor := _stem(content[0])) not in _COUNTRIES:
        return frozenset()
    return frozenset((actor, other) for w in content[1:] if w in _ADJECTIVES and (other := _stem(w)) != actor)


@functools.lru_cache(maxsize=1)
def corpus_prior() -> tuple[int, Counter[str]]:
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
