"""Logging for every process: events and ids only, never field values.

One line per event on stderr, with a timestamp and the process. In production each line is a
JSON object (``ICLI_LOG_FORMAT=json``, the default there) that a log collector reads without a
parser of its own, with the request's id when the event belongs to a web request or to a job
that request enqueued; in development it is plain text (without the id).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from shared.config import Settings

# The id of the web request (or of the request behind a job) the current thread works for.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# What an id taken from outside (a proxy's X-Request-ID, a job's metadata) may look like:
# anything else could forge log lines or carry a value into them, and is replaced.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # fullmatch: "$" would let a final "\n" in


def safe_request_id(candidate: object) -> str | None:
    """``candidate`` if it is a well-formed id, else None."""
    if isinstance(candidate, str) and _SAFE_ID.fullmatch(candidate):
        return candidate
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(settings: Settings, process: str) -> None:
    """One stream handler on stderr; quiet third-party loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(
            "%(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
            static_fields={"service": process},
            timestamp="time",  # ISO 8601, UTC
        ))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {process}[%(process)d] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Werkzeug logs request lines with query strings; the access log is ours (intake).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Each start checks the schema's revision: Alembic would say so at INFO every time.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
