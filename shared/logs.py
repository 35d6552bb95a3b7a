"""Logging for both runtimes: events and ids only, never field values."""

from __future__ import annotations

import logging
import sys

from shared.config import Settings


def configure_logging(settings: Settings, process: str) -> None:
    """One stream handler on stderr with the process name; quiet third-party loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {process}[%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Werkzeug logs request lines with query strings; ours carry ids only, keep it at warnings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
