"""Send messages through apprise (imported only here) and report why a send failed.

apprise only answers True/False, so its log is captured for the reason. Each URL of a channel is sent
separately: when one of two URLs fails, the retry goes only to the one that did not accept the alert.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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
    """The URL's scheme and host only, for logs (URLs often carry tokens and passwords)."""
    if url.startswith(CONFIG_PREFIX):
        return url
    scheme, _, rest = url.partition("://")
    host = rest.split("/")[0].split("?")[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}" if rest else url


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
        detail = _failure_reason(captured.getvalue(), default="")
        return f"apprise does not understand the {what} {redact(url)}" + (f" ({detail})" if detail else "")
    return None


@contextmanager
def _captured_apprise_log() -> Iterator[io.StringIO]:
    """Capture everything apprise logs meanwhile (the reason for a failure is often a DEBUG line), and keep it
    out of our log unless the user asked for apprise's debug output (-vv): callers log the reason."""
    apprise_log = logging.getLogger("apprise")
    propagate = apprise_log.propagate
    show = propagate and apprise_log.level == logging.DEBUG  # read before LogCapture changes the level
    with apprise.LogCapture(level=logging.DEBUG) as captured:
        apprise_log.propagate = show
        try:
            yield captured
        finally:
            apprise_log.propagate = propagate


def send(url: str, message: Message, timeout: float = 30.0) -> SendResult:
    """Send one message to one apprise URL; never raises. ``timeout`` bounds connecting and each read."""
    key = target_key(url)
    body_format = {"text": apprise.NotifyFormat.TEXT, "markdown": apprise.NotifyFormat.MARKDOWN,
                   "html": apprise.NotifyFormat.HTML}[message.body_format]
    with _captured_apprise_log() as captured:
        client = _client_for(url)
        if client is None:
            detail = _failure_reason(captured.getvalue(), default="")
            why = f" ({detail})" if detail else ""
            return SendResult(key, False, f"invalid apprise URL {redact(url)}{why}")
        for service in client:
            _limit_timeouts(service, timeout)
        try:
            ok = bool(client.notify(body=message.body, title=message.title, body_format=body_format,
                                    notify_type=_SEVERITY.get(message.severity, apprise.NotifyType.INFO)))
        except Exception as exc:  # a plugin bug must not take the daemon down
            return SendResult(key, False, f"{type(exc).__name__}: {exc}")
        reason = "" if ok else _failure_reason(captured.getvalue())
    return SendResult(key, ok, reason)


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
