"""Send messages through apprise (imported only here) and report why a send failed.

apprise only answers True/False, so its log is captured for the reason. Each URL of a channel is sent
separately: when one of two URLs fails, the retry goes only to the one that did not accept the alert.
"""

from __future__ import annotations

import hashlib
import logging
import sys
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
    host = rest.split("/")[0].rsplit("@", 1)[-1].split("?")[0]
    return f"{scheme}://{host}" if rest else url


def url_format(url: str) -> str:
    """The body format a URL's service renders best: HTML for email, Markdown for chat, text otherwise."""
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
    if _client_for(url) is None:
        what = "configuration file" if url.startswith(CONFIG_PREFIX) else "URL"
        return f"apprise does not understand the {what} {redact(url)}"
    return None


def send(url: str, message: Message, timeout: float = 30.0) -> SendResult:
    """Send one message to one apprise URL; never raises."""
    key = target_key(url)
    client = _client_for(url)
    if client is None:
        return SendResult(key, False, f"invalid apprise URL {redact(url)}")
    body_format = {"text": apprise.NotifyFormat.TEXT, "markdown": apprise.NotifyFormat.MARKDOWN,
                   "html": apprise.NotifyFormat.HTML}[message.body_format]
    with apprise.LogCapture(level=logging.INFO) as captured:
        try:
            ok = bool(client.notify(body=message.body, title=message.title, body_format=body_format,
                                    notify_type=_SEVERITY.get(message.severity, apprise.NotifyType.INFO)))
        except Exception as exc:  # a plugin bug must not take the daemon down
            return SendResult(key, False, f"{type(exc).__name__}: {exc}")
        reason = "" if ok else _failure_reason(captured.getvalue())
    return SendResult(key, ok, reason)


def _failure_reason(log_text: str) -> str:
    lines = [line.split(" - ", 2)[-1].strip() for line in log_text.splitlines() if line.strip()]
    interesting = [line for line in lines if "fail" in line.lower() or "error" in line.lower()
                   or "refused" in line.lower()]
    return "; ".join((interesting or lines)[-3:]) or "apprise reported failure without a reason"
