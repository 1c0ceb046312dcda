"""Logging set-up: text or one JSON object per line, with secrets scrubbed from every record."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from types import TracebackType

_SECRET_PATTERNS = [
    re.compile(r"\b(sk|rk)_(test|live)_[A-Za-z0-9]+"),
    re.compile(r"\bwhsec_[A-Za-z0-9_]+"),
    re.compile(r"\b((?:pi|seti)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+"),
    re.compile(r"\b\d{13,19}\b"),  # anything shaped like a full card number
    re.compile(r"(/recover/)[^/\s?\"]+"),  # a recovery link's token opens the customer's page
]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
_CONTEXT_FIELDS = ("event_id", "event_type", "intent_id", "case_id", "customer_id", "reference")


def scrub(text: str) -> str:
    """Replace API keys, webhook secrets, client secrets and card numbers with a marker."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_redacted, text)
    return text


def _redacted(match: re.Match[str]) -> str:
    if match.re.pattern.startswith(r"\b((?:pi|seti)"):
        return f"{match.group(1)}_secret_[redacted]"
    if match.re.pattern.startswith("(/recover/)"):
        return f"{match.group(1)}[redacted]"
    return "[redacted]"


class ScrubbingFilter(logging.Filter):
    """Runs every record's final message through `scrub`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


class ScrubbingTextFormatter(logging.Formatter):
    """Plain lines; tracebacks and stacks are scrubbed too (their frames quote local values)."""

    def formatException(self, ei: ExcInfo) -> str:
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return scrub(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, carrying the ids a record was logged with (`extra=`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _CONTEXT_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ScrubbingFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            ScrubbingTextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
