"""Send messages through apprise (imported only here) and report why a send failed.

apprise only answers True/False, so its log is captured for the reason. Each URL of a channel is sent
separately: when one of two URLs fails, the retry goes only to the one that did not accept the alert.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote

import apprise
from apprise.decorators import notify as apprise_plugin

log = logging.getLogger(__name__)

_SEVERITY = {"info": apprise.NotifyType.INFO, "success": apprise.NotifyType.SUCCESS,
             "warning": apprise.NotifyType.WARNING, "failure": apprise.NotifyType.FAILURE}


@apprise_plugin(on="console", name="Terminal output")
def _console(body: str, title: str, notify_type: str, *args: object, **kwargs: object) -> bool:
    """``console://`` prints alerts to standard output: the shipped default channel, so a new user sees
    alerts before configuring email or chat."""
    rule = "─" * 72
    sys.stdout.write(f"{rule}\n[{notify_type.upper()}] {title}\n{body}\n")
    sys.stdout.flush()
    return True


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    body_format: str = "text"  # text | markdown | html
    severity: str = "info"


@dataclass(frozen=True)
class SendResult:
    target: str  # a stable key for the URL (a hash, so secrets are not stored)
    ok: bool
    reason: str = ""


def target_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def redact(url: str) -> str:
    """A URL fit for logs and the outbox: the scheme and the host only, the credentials masked
    (``mailtos://***@smtp.example.com``). Many services keep their token where a host would be
    (``tgram://<bot token>/<chat>``), so a host that does not look like a host name or an IP address is masked
    too (``tgram://***``); paths and query strings (webhook tokens, passwords) are dropped."""
    if url.startswith(CONFIG_PREFIX):
        source = url[len(CONFIG_PREFIX):]
        # a local file's path is no secret; a remote configuration's URL may carry credentials
        return CONFIG_PREFIX + redact(source) if "://" in source else url
    parts = _split_url(url)
    if parts is None:
        return "***"  # not a URL at all: it could be anything, a pasted token included
    scheme = parts.scheme if _SCHEME.fullmatch(parts.scheme) else "***"
    host = parts.host
    shown = host if not host or _looks_like_host(host) else "***"
    return f"{scheme}://{'***@' if parts.has_userinfo else ''}{shown}"


def scrub(text: str, urls: Iterable[str]) -> str:
    """``text`` (a reason apprise logged, an exception's message) with the secrets of ``urls`` masked: every
    credential, token-like host, path segment and query value of those URLs, any URL written in the text
    (redacted as :func:`redact` does) and the request path urllib3 quotes (``with url: /bot<token>/send``)."""
    for secret in sorted({piece for url in urls for piece in _secret_pieces(url)}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_IN_TEXT.sub(lambda match: redact(match.group(0)), text)
    return _REQUEST_PATH.sub(r"\1/***", text)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST = re.compile(r"localhost|(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]",
                   re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")
_REQUEST_PATH = re.compile(r"(\burl: )/\S*")
_MIN_SECRET = 3  # shorter pieces would mask ordinary words of the reason; URLs in it are redacted anyway


class _UrlParts(NamedTuple):
    scheme: str
    userinfo: str
    has_userinfo: bool  # an "@" in the authority, even with nothing before it
    host: str  # with its port, if any
    rest: str  # path, query and fragment


def _split_url(url: str) -> _UrlParts | None:
    """Split a notification URL by hand: apprise URLs often put tokens where a host or port would be, which
    urllib's parser rejects or mangles. None when ``url`` has no ``scheme://``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, host = authority.rpartition("@")
    return _UrlParts(scheme, userinfo, bool(at), host, rest[len(authority):])


def _looks_like_host(authority_host: str) -> bool:
    """A host name, an IPv4 or a bracketed IPv6 address, with an optional port."""
    host = re.sub(r":\d+$", "", authority_host)
    return bool(_HOST.fullmatch(host))


def _secret_pieces(url: str) -> set[str]:
    """The parts of ``url`` that may be secret, as written and percent-decoded."""
    if url.startswith(CONFIG_PREFIX):
        url = url[len(CONFIG_PREFIX):]
        if "://" not in url:
            return set()
    parts = _split_url(url)
    if parts is None:
        return {url, *url.split()}
    pieces = [parts.userinfo, *parts.userinfo.split(":")] if parts.has_userinfo else []
    if not _looks_like_host(parts.host):
        pieces += [parts.host, *parts.host.split(":")]
    path, _, query = parts.rest.partition("?")
    pieces += re.split(r"[/#]", path)
    pieces += [item.partition("=")[2] or item for item in re.split(r"[&#]", query)]
    decoded = [unquote(piece) for piece in pieces]
    return {piece for piece in pieces + decoded if len(piece) >= _MIN_SECRET}


def url_format(url: str, override: str = "auto") -> str:
    """The body format a URL's service renders best: HTML for email, Markdown for chat, text otherwise
    (a channel's ``format:`` other than ``auto`` overrides it)."""
    if override != "auto":
        return override
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("mailto", "mailtos", "email"):
        return "html"
    if scheme in ("console", "json", "xml", "form", "syslog"):
        return "text"
    return "markdown"


CONFIG_PREFIX = "apprise-config:"


def _client_for(url: str) -> apprise.Apprise | None:
    """An Apprise object for one URL, or for every URL of an apprise configuration file."""
    client = apprise.Apprise()
    if url.startswith(CONFIG_PREFIX):
        config = apprise.AppriseConfig()
        if not config.add(url[len(CONFIG_PREFIX):]):
            return None
        client.add(config)
        return client if len(client) else None
    return client if client.add(url) else None


def check_url(url: str) -> str | None:
    """None when apprise understands the URL (or configuration file), else a reason."""
    with _captured_apprise_log() as captured:
        client = _client_for(url)
    if client is None:
        what = "configuration file" if url.startswith(CONFIG_PREFIX) else "URL"
        detail = scrub(_failure_reason(captured.getvalue(), default=""), [url])
        return f"apprise does not understand the {what} {redact(url)}" + (f" ({detail})" if detail else "")
    return None


@contextmanager
def _captured_apprise_log() -> Iterator[io.StringIO]:
    """Capture everything apprise logs meanwhile (the reason for a failure is often a DEBUG line), and keep it
    out of our log unless the user asked for apprise's debug output (-vv): callers log the reason, scrubbed.
    urllib3, apprise's HTTP client, follows the same rule: its debug lines quote request paths, which hold
    webhook tokens."""
    apprise_log, http_log = logging.getLogger("apprise"), logging.getLogger("urllib3")
    propagate, http_propagate = apprise_log.propagate, http_log.propagate
    show = propagate and apprise_log.level == logging.DEBUG  # read before LogCapture changes the level
    # a handler, so that a record stopped here does not reach logging's last-resort handler (stderr)
    sink = logging.NullHandler()
    with apprise.LogCapture(level=logging.DEBUG) as captured:
        apprise_log.propagate = show
        if not show:
            http_log.addHandler(sink)
            http_log.propagate = False
        try:
            yield captured
        finally:
            apprise_log.propagate = propagate
            http_log.propagate = http_propagate
            http_log.removeHandler(sink)


def send(url: str, message: Message, timeout: float = 30.0) -> SendResult:
    """Send one message to one apprise URL; never raises. ``timeout`` bounds connecting and each read.
    The reason of a failure is scrubbed of the URL's secrets (it goes to logs and the outbox)."""
    key = target_key(url)
    body_format = {"text": apprise.NotifyFormat.TEXT, "markdown": apprise.NotifyFormat.MARKDOWN,
                   "html": apprise.NotifyFormat.HTML}[message.body_format]
    with _captured_apprise_log() as captured:
        client = _client_for(url)
        if client is None:
            detail = scrub(_failure_reason(captured.getvalue(), default=""), [url])
            why = f" ({detail})" if detail else ""
            return SendResult(key, False, f"invalid apprise URL {redact(url)}{why}")
        # the URLs apprise loaded (from an apprise configuration file, too) hold secrets we were not given
        secrets = [url, *(_service_url(service) for service in client)]
        for service in client:
            _limit_timeouts(service, timeout)
        try:
            ok = bool(client.notify(body=message.body, title=message.title, body_format=body_format,
                                    notify_type=_SEVERITY.get(message.severity, apprise.NotifyType.INFO)))
        except Exception as exc:  # a plugin bug must not take the daemon down
            return SendResult(key, False, scrub(f"{type(exc).__name__}: {exc}", secrets))
        reason = "" if ok else scrub(_failure_reason(captured.getvalue()), secrets)
    return SendResult(key, ok, reason)


def _service_url(service: apprise.URLBase) -> str:
    """A loaded service's URL as apprise writes it; only its credentials, host and path count as secret
    (its query string is mostly apprise's own defaults such as ``method=POST``, which are no secrets)."""
    try:
        url = str(service.url(privacy=False))
    except Exception:  # a plugin's url() bug must not lose the reason
        return ""
    return url.partition("?")[0]


def _limit_timeouts(service: object, timeout: float) -> None:
    """alerts.send_timeout caps apprise's own socket timeouts (a URL's ?cto= / ?rto= may set them lower)."""
    for attribute in ("socket_connect_timeout", "socket_read_timeout"):
        current = getattr(service, attribute, None)
        if isinstance(current, (int, float)) and not isinstance(current, bool) and current > timeout:
            setattr(service, attribute, timeout)


_REASON_WORDS = ("fail", "error", "refused", "exception", "timed out", "timeout", "unreachable", "denied",
                 "invalid", "unavailable", "reset")


def _failure_reason(log_text: str, default: str = "apprise reported failure without a reason") -> str:
    """The lines of apprise's log that say why a send failed (payload dumps and progress lines left out)."""
    lines = [line.split(" - ", 2)[-1].strip() for line in log_text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.lower().startswith(("json payload", "response details",
                                                                     "notifying ", "payload"))]
    interesting = [line for line in lines if any(word in line.lower() for word in _REASON_WORDS)]
    return "; ".join(dict.fromkeys(interesting or lines[-1:])) or default
