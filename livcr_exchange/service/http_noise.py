"""What an attacker can make a service log: one structured line per malformed request or
client that went away, with its status, and no more than a few such lines per window.

aiohttp answers malformed HTTP (``BadHttpMessage``, ``InvalidURLError``) itself, without the
application, and writes a full traceback to its ``aiohttp.server`` logger; a client that goes
away mid-request does the same. ``quiet_aiohttp_server_log`` routes that logger to one JSON line
per event: status 400 for malformed HTTP, 499 for a client that went away, 500 (with the
exception formatted into the line) for anything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import structlog
from aiohttp.http_exceptions import HttpProcessingError

CLIENT_GONE = 499  # nginx's "client closed request": the answer had nobody to go to
WINDOW_SECONDS = 10.0
LINES_PER_WINDOW = 20  # per kind of event; the rest are counted in one "suppressed" line

log = structlog.get_logger("livcr.http")


@dataclass
class RateLimit:
    """At most ``lines`` log lines per ``window`` seconds for each kind of event."""

    lines: int = LINES_PER_WINDOW
    window: float = WINDOW_SECONDS
    _started: dict[str, float] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def allow(self, kind: str) -> bool:
        """Whether to log this event of ``kind``; opening a new window reports how many of
        the last one were left out."""
        now = time.monotonic()
        if now - self._started.get(kind, float("-inf")) >= self.window:
            left_out = self._counts.get(kind, 0) - self.lines
            if left_out > 0:
                log.warning("suppressed", kind=kind, count=left_out, seconds=self.window)
            self._started[kind], self._counts[kind] = now, 0
        self._counts[kind] += 1
        return self._counts[kind] <= self.lines


LIMIT = RateLimit()


def client_gone(exc: BaseException | None) -> bool:
    return isinstance(exc, ConnectionError | asyncio.CancelledError)


class _ServerLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            if LIMIT.allow("malformed_http"):
                log.info("malformed request", status=400, error=type(exc).__name__)
        elif client_gone(exc):
            if LIMIT.allow("client_gone"):
                log.info("client went away", status=CLIENT_GONE, error=type(exc).__name__)
        elif record.levelno >= logging.WARNING and LIMIT.allow("server_error"):
            log.error(
                "request failed", status=500, message=record.getMessage(), exc_info=record.exc_info
            )


def quiet_aiohttp_server_log() -> None:
    """Route aiohttp's server logger through ``_ServerLogHandler`` (idempotent)."""
    server = logging.getLogger("aiohttp.server")
    server.handlers = [_ServerLogHandler()]
    server.propagate = False
    server.setLevel(logging.INFO)
