"""structlog set-up shared by hub and gateway: JSON lines in production, never content."""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
import structlog

from .http_noise import quiet_aiohttp_server_log


def _fallback(value: Any) -> Any:
    """What a value JSON cannot hold becomes: its ``__structlog__()``, else its repr (as with
    structlog's own JSON fallback)."""
    render = getattr(value, "__structlog__", None)
    return render() if callable(render) else repr(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_fallback)


def _json_line(event: Any, **_: Any) -> str:
    """Render an event as compact JSON. msgspec, not the json module: every request logs a
    line, and this encoder takes a fraction of the time ``json.dumps`` does."""
    return _ENCODER.encode(event).decode("utf-8")


def configure_logging(fmt: str = "json", level: str = "info") -> None:
    """One line per event to stderr; ``fmt`` is "json" or "console"."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # JSON: an exception as text in the line (else "exc_info": true and nothing else);
            # the console renderer formats exceptions itself.
            *([structlog.processors.format_exc_info] if fmt == "json" else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    quiet_aiohttp_server_log()
