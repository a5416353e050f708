"""The gateway's log as a host application hands it in: a structlog logger or a stdlib one.

The gateway logs events with fields (``log.info("queued", purpose=...)``). A structlog logger
takes them as they are; a stdlib ``logging.Logger`` gets the event and its fields on one line,
the fields also as ``extra`` for a structured handler.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import structlog


class EventLogger(Protocol):
    """What the gateway logs through: an event name and fields."""

    def info(self, event: str, **fields: Any) -> Any: ...
    def warning(self, event: str, **fields: Any) -> Any: ...
    def error(self, event: str, **fields: Any) -> Any: ...
    def exception(self, event: str, **fields: Any) -> Any: ...


class StdlibEventLogger:
    """An ``EventLogger`` writing to a stdlib logger."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any], *, exc_info: bool) -> None:
        if not self._logger.isEnabledFor(level):
            return
        text = " ".join([event, *(f"{key}={value!r}" for key, value in sorted(fields.items()))])
        self._logger.log(level, "%s", text, extra={"livcr": fields}, exc_info=exc_info)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields, exc_info=False)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields, exc_info=False)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields, exc_info=False)

    def exception(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields, exc_info=True)


def event_logger(logger: logging.Logger | EventLogger | None) -> EventLogger:
    """The logger to use: a stdlib one adapted, a structlog one as is, by default structlog's
    ``livcr.gateway`` (what `livcr gateway serve` configures)."""
    if logger is None:
        default: EventLogger = structlog.get_logger("livcr.gateway")
        return default
    if isinstance(logger, logging.Logger):
        return StdlibEventLogger(logger)
    return logger
