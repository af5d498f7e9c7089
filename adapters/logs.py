"""Log records with credentials cut out, for libraries that log what they send and receive at DEBUG."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable


class Redacting(logging.Filter):
    """Replaces what `pattern` matches in a record's message with its first group (if any) and an ellipsis."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.pattern.sub(lambda match: (match.group(1) or "") + "…", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def redact(loggers: Iterable[str], pattern: re.Pattern[str]) -> None:
    """Install one `Redacting` filter for `pattern` on each named logger (a filter applies to its own logger only)."""
    for name in loggers:
        named = logging.getLogger(name)
        if not any(isinstance(f, Redacting) and f.pattern == pattern for f in named.filters):
            named.addFilter(Redacting(pattern))
