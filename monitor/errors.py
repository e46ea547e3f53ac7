"""One exception tree for the whole project.

Every error's ``str()`` is a complete log line that names the feed, file or channel involved.
Library errors are converted to these in the one module that owns the library.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error raised by monitor."""


class ConfigError(MonitorError):
    """One or more problems in the configuration; ``problems`` lists each as 'file:line: message'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class FetchError(MonitorError):
    """A feed could not be fetched."""


class ParseError(MonitorError):
    """A feed body could not be parsed into entries."""


class StoreError(MonitorError):
    """The state database cannot be opened or used."""


class NotifyError(MonitorError):
    """A notification channel failed."""


class ClassifierError(MonitorError):
    """The relevance model cannot be trained, loaded or used."""


class QuerySyntaxError(MonitorError):
    """A watchlist query does not parse; carries the position for a caret display."""

    def __init__(self, message: str, text: str, position: int, hint: str = "") -> None:
        self.message = message
        self.text = text
        self.position = position
        self.hint = hint
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        self.line = line
        self.column = col
        super().__init__(self.render())

    def render(self, source: str = "<query>", first_line: int = 1) -> str:
        """Render as 'source:line:col: message', the offending line, a caret and the hint."""
        lines = self.text.split("\n")
        bad = lines[self.line - 1] if self.line - 1 < len(lines) else ""
        out = [f"{source}:{first_line + self.line - 1}:{self.column}: {self.message}", "    " + bad,
               "    " + " " * (self.column - 1) + "^"]
        if self.hint:
            out.append(f"    hint: {self.hint}")
        return "\n".join(out)
