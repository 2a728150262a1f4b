"""Keeping secrets out of logs: a logging filter that blanks every registered secret value.

Every secret docfs learns (password, token, session cookie) is registered with the ``Redactor``
of its remote; the filter rewrites each log record's final message before any handler sees it,
so even a careless ``log.debug("%s", response.headers)`` cannot leak one.
"""

from __future__ import annotations

import logging
import re
import threading

_MASK = "***"
# Query parameters and header-like pairs that carry secrets whatever their value is.
_PAIR = re.compile(
    r"(?i)\b(password|passwd|token|apikey|api_key|access_token|jsessionid|asc_auth_key"
    r"|authorization|cookie|x-api-token)(\s*[=:]\s*)(?:bearer\s+)?([^\s&;,'\"]+)"
)


class Redactor(logging.Filter):
    """Holds the secret values of a process and removes them from log records."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            # very short values would blank ordinary words; real secrets are longer
            self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for s in secrets:
            text = text.replace(s, _MASK)
        return _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{_MASK}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = self.redact(message)
        record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True

    def install(self, logger: logging.Logger | None = None) -> None:
        """Attach to every handler of ``logger`` (root by default) and to the logger itself."""
        target = logger or logging.getLogger()
        target.addFilter(self)
        for handler in target.handlers:
            handler.addFilter(self)


def redact_url(url: str) -> str:
    """A URL fit for a log line: credentials in the query or userinfo blanked."""
    url = re.sub(r"//[^/@]+@", "//***@", url)
    return _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{_MASK}", url)
