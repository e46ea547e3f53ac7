"""Configuration: YAML files -> validated, frozen values.

Layout (a contract with users and external harnesses):
  monitor.yaml            settings and channels
  feeds.yaml              the feeds to poll (path set by ``feeds_file``)
  watchlists/*.yaml       one watchlist per file (directory set by ``watchlists_dir``)

Every problem in every file is collected and reported at once as ``file:line: message``.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .yamlsource import YamlDoc, YamlSyntaxError, load_yaml

DEFAULT_CONFIG = Path("config/monitor.yaml")
DEFAULT_STATE = Path("state")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30}


def parse_duration(value: Any) -> float:
    """'90s', '10m', '48h', '2d', '1w' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 48h or 2d")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 30s, 10m, 48h or 2d, got {value!r}")
    return float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]


def parse_size(value: Any) -> int:
    """'10MB', '512KiB' or a number of bytes -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size such as 512KB or 10MB, got {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


Duration = Annotated[float, BeforeValidator(parse_duration)]
OptionalDuration = Annotated[float | None, BeforeValidator(lambda v: None if v is None else parse_duration(v))]
Size = Annotated[int, BeforeValidator(parse_size)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollSettings(_Strict):
    interval: Duration = 600.0  # default per-feed poll interval
    jitter: float = Field(0.1, ge=0, le=0.5)  # +/- fraction of the interval, spreads load
    min_interval: Duration = 120.0
    max_interval: Duration = 6 * 3600.0
    concurrency: int = Field(16, ge=1, le=512)
    per_host: int = Field(4, ge=1, le=64)
    tick: Duration = 30.0  # how often the daemon asks the store which feeds are due
    backoff_max: Duration = 6 * 3600.0
    failing_after: int = Field(5, ge=1)  # consecutive errors before a feed is flagged as failing
    # -- polling at scale (issue 5) --
    adaptive: bool = True  # feeds without their own `interval` follow their observed publishing rate
    polls_per_entry: float = Field(2.0, gt=0, le=20)  # adaptive target: about this many polls per new entry
    failing_channel: str | None = None  # a channel told once when a feed starts failing (None: logs only)
    parse_workers: int | None = Field(None, ge=0, le=64)  # parser processes; None = CPU count, 0/1 = in-process


class FetchSettings(_Strict):
    connect_timeout: Duration = 10.0
    read_timeout: Duration = 20.0
    deadline: Duration = 60.0  # total time allowed for one request, body included
    max_bytes: Size = 10 * 10**6
    max_redirects: int = Field(5, ge=0, le=20)
    user_agent: str | None = None


class AlertSettings(_Strict):
    max_age: OptionalDuration = 48 * 3600.0  # entries older than this when first seen are stored, not alerted
    retry_base: Duration = 60.0
    retry_max_age: Duration = 24 * 3600.0  # after this an undeliverable alert is marked failed
    send_timeout: Duration = 30.0


class RetentionSettings(_Strict):
    entry_days: float | None = Field(90, ge=1)  # entry bodies older than this are pruned; None keeps them
    every: Duration = 24 * 3600.0  # how often the daemon prunes and runs PRAGMA optimize


class MetricsSettings(_Strict):
    enabled: bool = False  # a Prometheus endpoint (needs the prometheus-client package)
    host: str = "127.0.0.1"  # localhost only by default: the figures are not for the world
    port: int = Field(9464, ge=1, le=65535)


class FollowUpSettings(_Strict):
    enabled: bool = False  # one "Update: ... now reported by N outlets" message per step of growth
    every: int = Field(3, ge=1)  # a step: this many more outlets than when the story was alerted


class StorySettings(_Strict):
    window: Duration = 72 * 3600.0
    follow_up: FollowUpSettings = FollowUpSettings()


class ClassifierSettings(_Strict):
    enabled: bool = True
    auto_train: bool = True  # train on first run when no usable model exists
    threshold: float | None = Field(None, ge=0, le=1)  # None: the threshold chosen at training time


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _clock_time(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 reads 08:00 unquoted as 480
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str) or not _CLOCK.match(value.strip()):
        raise ValueError(f"expected a local time HH:MM, got {value!r}")
    return value.strip()


ClockTime = Annotated[str, BeforeValidator(_clock_time)]


class DigestSchedule(_Strict):
    every: Duration | None = None  # e.g. 4h: a digest every 4 hours
    at: list[ClockTime] = []  # e.g. ["08:00", "17:00"]: at these local times

    @field_validator("at", mode="before")
    @classmethod
    def _single_time(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, int)) else value

    @field_validator("every")
    @classmethod
    def _sensible_period(cls, value: float | None) -> float | None:
        if value is not None and value < 60:
            raise ValueError("a digest period must be at least 1m")
        return value


class QuietHours(_Strict):
    start: ClockTime  # local time the quiet window begins, e.g. "22:00"
    end: ClockTime  # local time it ends, e.g. "07:00" (may be on the next day)


class ChannelSpec(_Strict):
    """A channel in its long form; the short form is just a list of apprise URLs."""

    urls: list[str] = []
    apprise_config: str | None = None  # an apprise configuration file (path relative to monitor.yaml)
    mode: Literal["instant", "digest"] = "instant"
    digest: DigestSchedule | None = None
    quiet_hours: QuietHours | None = None
    rate_limit: int | None = Field(None, ge=1)  # at most N instant alerts per hour; the overflow goes to the digest
    format: Literal["auto", "text", "markdown", "html"] = "auto"


def _channel_form(value: Any) -> str:
    return "ChannelSpec" if isinstance(value, (dict, ChannelSpec)) else "list[str]"


# A channel is a list of URLs (short form) or a mapping (long form). The discriminator picks the form from the
# YAML value, so a mistake in a long-form channel is reported once, at its own line, not as "not a list" too.
ChannelValue = Annotated[Annotated[list[str], Tag("list[str]")] | Annotated[ChannelSpec, Tag("ChannelSpec")],
                         Discriminator(_channel_form)]


class MonitorFile(_Strict):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = "UTC"  # local time zone for digests and quiet hours (IANA name, e.g. Europe/Paris)
    templates_dir: str = "templates"  # user overrides of the alert templates
    feeds_file: str = "feeds.yaml"
    watchlists_dir: str = "watchlists"
    entities_file: str | None = None  # shared entity groups, usable as @name in every watchlist (issue 7)
    channels: dict[str, ChannelValue]
    poll: PollSettings = PollSettings()
    fetch: FetchSettings = FetchSettings()
    alerts: AlertSettings = AlertSettings()
    stories: StorySettings = StorySettings()
    classifier: ClassifierSettings = ClassifierSettings()
    retention: RetentionSettings = RetentionSettings()
    metrics: MetricsSettings = MetricsSettings()

    @field_validator("channels")
    @classmethod
    def _needs_default(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "default" not in value:
            raise ValueError("a channel named 'default' is required")
        return value

    @model_validator(mode="after")
    def _failing_channel_exists(self) -> MonitorFile:
        wanted = self.poll.failing_channel
        if wanted is not None and wanted not in self.channels:
            raise ValueError(f"poll.failing_channel: unknown channel {wanted!r} "
                             f"(defined: {', '.join(sorted(self.channels))})")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value


class FeedItem(_Strict):
    url: str
    name: str | None = None
    interval: OptionalDuration = None
    tags: list[str] = []
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("url is empty")
        if "://" in value and not value.lower().startswith(("http://", "https://", "file://")):
            raise ValueError("expected an http(s):// URL, a file:// URL or a local path")
        return value


class FeedsFile(_Strict):
    feeds: list[FeedItem] = []


class KeywordRules(_Strict):
    any: list[str] = []  # at least one of these
    all: list[str | list[str]] = []  # every item; an inner list means any one of its terms
    none: list[str] = []  # none of these


class WatchlistTests(_Strict):
    match: list[str] = []  # titles that must match
    no_match: list[str] = []  # titles that must not match


class Route(_Strict):
    """Where a watchlist's alerts go: a channel, optionally with its own mode and severity."""

    channel: str
    mode: Literal["instant", "digest"] | None = None  # None: the channel's mode
    severity: Literal["info", "success", "warning", "failure"] | None = None  # None: the watchlist's
    urgent: bool = False  # urgent alerts are sent during quiet hours


class WatchlistFile(_Strict):
    name: str
    description: str = ""
    enabled: bool = True
    channels: list[str | Route] = ["default"]
    severity: Literal["info", "success", "warning", "failure"] = "info"
    keywords: KeywordRules | None = None
    query: str | None = None
    entities: dict[str, list[str]] = {}
    # the classifier's relevance score; "auto" = the threshold chosen on held-out data when the model was trained
    min_score: Annotated[float, Field(ge=0, le=1)] | Literal["auto"] | None = None
    subtopics: list[str] = []
    sources: list[str] = []  # feed names or tags; empty = every feed
    tests: WatchlistTests | None = None


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str
    interval_s: float | None
    tags: tuple[str, ...]
    enabled: bool


@dataclass(frozen=True)
class WatchlistConfig:
    name: str
    path: Path
    line: int  # where the file starts; query errors are offset from the 'query:' line
    spec: WatchlistFile
    query_line: int = 1
    entities_file: Path | None = None  # the shared entity file named in monitor.yaml (issue 7)


@dataclass(frozen=True)
class Config:
    path: Path
    settings: MonitorFile
    feeds: tuple[FeedConfig, ...]
    watchlists: tuple[WatchlistConfig, ...]

    @property
    def channels(self) -> dict[str, list[str]]:
        """Channel name -> apprise URLs (environment variables expanded)."""
        return {name: list(spec.urls) for name, spec in self.channel_specs.items()}

    @property
    def channel_specs(self) -> dict[str, ChannelSpec]:
        return {name: _as_spec(value) for name, value in self.settings.channels.items()}

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def entities_path(self) -> Path | None:
        """The shared entity file (``entities_file``), for file watching; None when not set."""
        return self.path.parent / self.settings.entities_file if self.settings.entities_file else None

    @property
    def templates_dir(self) -> Path:
        return self.path.parent / self.settings.templates_dir


def _as_spec(value: list[str] | ChannelSpec) -> ChannelSpec:
    return ChannelSpec(urls=value) if isinstance(value, list) else value


def routes_of(spec: WatchlistFile) -> list[Route]:
    """A watchlist's routes, with the short form `- name` expanded."""
    return [Route(channel=r) if isinstance(r, str) else r for r in spec.channels]


def resolve_config_path(cli_value: str | None) -> Path:
    return Path(cli_value or os.environ.get("MONITOR_CONFIG") or DEFAULT_CONFIG)


def resolve_state_dir(cli_value: str | None) -> Path:
    return Path(cli_value or os.environ.get("MONITOR_STATE") or DEFAULT_STATE)


def load_config(path: Path) -> Config:
    """Load and validate every configuration file; raise ConfigError listing all problems."""
    problems: list[str] = []
    settings_doc = _read(path, problems)
    settings = _validate(settings_doc, MonitorFile, problems) if settings_doc else None
    base = path.parent
    if settings is not None:
        assert settings_doc is not None
        settings = settings.model_copy(update={"channels": _expand_channels(settings_doc, settings, base, problems)})
    # Validate the other files even when the settings are broken, so every problem is reported at once.
    raw = settings_doc.data if settings_doc and isinstance(settings_doc.data, dict) else {}
    feeds_file = settings.feeds_file if settings else _str_or(raw.get("feeds_file"), "feeds.yaml")
    watch_dir = settings.watchlists_dir if settings else _str_or(raw.get("watchlists_dir"), "watchlists")
    channels = set(settings.channels) if settings else (set(raw["channels"]) if isinstance(
        raw.get("channels"), dict) else None)
    feeds = _load_feeds(base / feeds_file, problems)
    entities_file = base / settings.entities_file if settings and settings.entities_file else None
    watchlists = _load_watchlists(base / watch_dir, channels, problems, entities_file)
    if problems or settings is None:
        raise ConfigError(problems or [f"{path}:1: cannot load settings"])
    return Config(path=path, settings=settings, feeds=tuple(feeds), watchlists=tuple(watchlists))


def _str_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _read(path: Path, problems: list[str]) -> YamlDoc | None:
    try:
        doc = load_yaml(path)
    except FileNotFoundError:
        problems.append(f"{path}:1: file not found")
        return None
    except YamlSyntaxError as exc:
        problems.append(str(exc))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1: cannot read: {exc}")
        return None
    if doc.data is None:
        doc.data = {}
    return doc


def _validate(doc: YamlDoc, model: type[BaseModel], problems: list[str]) -> Any:
    if not isinstance(doc.data, dict):
        problems.append(f"{doc.path}:1: expected a mapping of settings at the top level")
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(_describe(doc, model, error) for error in exc.errors())
        return None


def _describe(doc: YamlDoc, model: type[BaseModel], error: Any) -> str:
    loc = tuple(error["loc"])
    # pydantic puts union/validator branch names into loc; keep only real path parts
    clean = tuple(part for part in loc if isinstance(part, int) or not _is_branch_name(part))
    dotted = ".".join(str(p) for p in clean)
    where = doc.where(clean)
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _fields_at(model, clean[:-1])
        hint = difflib.get_close_matches(str(clean[-1]), known, n=1)
        if hint:
            suggestion = f" (did you mean '{hint[0]}'?)"
        else:
            suggestion = f" (expected one of: {', '.join(known)})" if known else ""
        inside = f" in '{dotted}'" if len(clean) > 1 else ""
        return f"{where}: unknown field '{clean[-1]}'{inside}{suggestion}"
    if kind == "missing":
        return f"{doc.where(clean[:-1])}: field '{dotted}' is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: field '{dotted}': {message} (got {_short(error.get('input'))})"


def _is_branch_name(part: str) -> bool:
    return part in {"str", "list[str]", "int", "float", "bool", "function-before[parse_duration(), float]",
                    "ChannelSpec"} or (
        "[" in part and "]" in part) or part.startswith("function-")


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _inner_model(field.annotation)
    return list(getattr(current, "model_fields", {}).keys())


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> tuple[str, list[str]]:
    """Replace ${VAR} (or ${VAR:-default}); return the text and the names of unset variables."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            if match.group(2) is not None:
                return match.group(2)
            missing.append(match.group(1))
            return ""
        return value

    return _ENV.sub(sub, text), missing


def _expand_channels(doc: YamlDoc, settings: MonitorFile, base: Path,
                     problems: list[str]) -> dict[str, list[str] | ChannelSpec]:
    """Expand ${VAR} in every channel URL and read apprise configuration files into URLs."""
    expanded: dict[str, list[str] | ChannelSpec] = {}
    for name, value in settings.channels.items():
        spec = _as_spec(value)
        prefix: tuple[str | int, ...] = ("channels", name) if isinstance(value, list) else ("channels", name, "urls")
        urls = []
        for index, url in enumerate(spec.urls):
            text, missing = expand_env(url)
            for var in missing:
                problems.append(f"{doc.where(prefix + (index,))}: field '{'.'.join(map(str, prefix + (index,)))}': "
                                f"environment variable {var} is not set")
            urls.append(text)
        if spec.apprise_config:
            urls.append(f"apprise-config:{(base / spec.apprise_config).resolve()}")
        if not urls:
            problems.append(f"{doc.where(('channels', name))}: field 'channels.{name}': no URLs "
                            f"(give a list of apprise URLs or `urls:` / `apprise_config:`)")
        expanded[name] = spec.model_copy(update={"urls": urls})
    return expanded


def load_feeds_file(path: Path) -> tuple[list[FeedConfig], list[str]]:
    """Only the feed list (for `monitor feeds add/remove/import`): the feeds and every problem found."""
    problems: list[str] = []
    feeds = _load_feeds(path, problems)
    return feeds, problems


def _load_feeds(path: Path, problems: list[str]) -> list[FeedConfig]:
    doc = _read(path, problems)
    if doc is None:
        return []
    parsed = _validate(doc, FeedsFile, problems)
    if parsed is None:
        return []
    feeds: list[FeedConfig] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(parsed.feeds):
        url = _resolve_local(item.url, path.parent)
        if url in seen:
            problems.append(f"{doc.where(('feeds', index, 'url'))}: field 'feeds.{index}.url': duplicate of feed "
                            f"#{seen[url]} ({url})")
            continue
        seen[url] = index
        feeds.append(FeedConfig(url=url, name=item.name or _default_name(url), interval_s=item.interval,
                                tags=tuple(item.tags), enabled=item.enabled))
    return feeds


def _resolve_local(url: str, base: Path) -> str:
    """Local paths in feeds.yaml are relative to the file; turn them into absolute file:// URLs."""
    if url.lower().startswith(("http://", "https://", "file://")):
        return url
    return (base / url).resolve().as_uri()


def _default_name(url: str) -> str:
    host = re.sub(r"^[a-z]+://", "", url, flags=re.IGNORECASE).split("/")[0]
    return host.removeprefix("www.") or url


def _load_watchlists(directory: Path, channels: set[str] | None, problems: list[str],
                     entities_file: Path | None = None) -> list[WatchlistConfig]:
    """Every watchlist file; ``channels`` None means the settings are broken and routes cannot be checked."""
    if not directory.is_dir():
        problems.append(f"{directory}:1: watchlists directory not found")
        return []
    found: list[WatchlistConfig] = []
    names: dict[str, Path] = {}
    for path in sorted(directory.glob("*.y*ml")):
        doc = _read(path, problems)
        if doc is None:
            continue
        if channels is not None and isinstance(doc.data, dict):
            _check_routes(doc, doc.data.get("channels", ["default"]), channels, problems)
        spec = _validate(doc, WatchlistFile, problems)
        if spec is None:
            continue
        if spec.name in names:
            problems.append(f"{doc.where(('name',))}: field 'name': watchlist '{spec.name}' is also defined in "
                            f"{names[spec.name]}")
            continue
        names[spec.name] = path
        found.append(WatchlistConfig(name=spec.name, path=path, line=1, spec=spec,
                                     query_line=doc.value_lines.get(("query",), 1), entities_file=entities_file))
    return found


def _check_routes(doc: YamlDoc, routes: Any, channels: set[str], problems: list[str]) -> None:
    """Unknown channel names in a watchlist's `channels:` (checked on the raw data, so a watchlist with
    other errors still gets this one reported)."""
    if not isinstance(routes, list):
        return
    for index, route in enumerate(routes):
        name = route.get("channel") if isinstance(route, dict) else route
        if not isinstance(name, str) or name in channels:
            continue
        hint = difflib.get_close_matches(name, sorted(channels), n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else f" (defined: {', '.join(sorted(channels))})"
        problems.append(f"{doc.where(('channels', index))}: field 'channels.{index}': unknown channel '{name}'{extra}")
