"""Entry identity: canonical URLs and stable keys. Pure functions.

Identity policy: within a feed an entry is its GUID (or its link, or a hash of its text); across feeds the
same canonical URL is the same entry. A key that produced an alert is never forgotten by pruning.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the reader, never select content.
_TRACKING_EXACT = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid",
    "_hsenc", "_hsmi", "mkt_tok", "cmpid", "cmp", "ocid", "ncid", "sr_share", "smid", "smtyp", "taid",
    "ito", "ref_src", "s_cid", "xtor", "__twitter_impression", "spm",
})
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_", "vero_", "at_")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """Normalize a URL so that trivially different links to the same page compare equal.

    Lowercases scheme and host, drops default ports, fragments and tracking parameters, sorts the
    remaining query, and removes a trailing slash from non-root paths. http and https are treated as the
    same page (many feeds mix them), so the scheme becomes https for web URLs.
    """
    url = url.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    if len(path) > 1:
        path = path.rstrip("/")
    query = urlencode(sorted(_content_params(parts.query)), doseq=True)
    return urlunsplit(("https", netloc, path, query, ""))


def _content_params(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not _is_tracking(k)]


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_EXACT or lowered.startswith(_TRACKING_PREFIXES)


def text_key(title: str, summary: str) -> str:
    """A stable key from an entry's text, for entries with neither GUID nor link."""
    folded = re.sub(r"\W+", " ", f"{title} {summary}".casefold()).strip()
    return "text:" + hashlib.sha256(folded.encode("utf-8")).hexdigest()[:32]


def entry_guid(raw_id: str | None, link: str, title: str, summary: str) -> str:
    """The per-feed identity of an entry: its GUID, else its canonical link, else a text hash."""
    if raw_id and raw_id.strip():
        return raw_id.strip()
    if link:
        return canonical_url(link)
    return text_key(title, summary)
