"""Waiting in tests: on a condition, with a deadline, never for a fixed time.

A fixed pause is either too short on a loaded machine (the test then fails, or worse, passes
without testing anything) or needlessly long on an idle one. These helpers poll a predicate
briefly and fail with ``what`` once the deadline passes (tests/test_no_fixed_sleeps.py keeps
every other sleep in tests/ and examples/ honest).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.02  # between two looks at the condition: short, it is not the deadline


def wait_until(condition: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    """Poll ``condition()`` until it returns something truthy, and return that.

    Raises:
        AssertionError: it did not within ``timeout`` seconds; the message names ``what``.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_SECONDS)
    return value


async def until(condition: Callable[[], T | Awaitable[T]], what: str, timeout: float = 20.0) -> T:
    """``wait_until`` for a coroutine: ``condition`` may be a plain or an async function."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(POLL_SECONDS)


def gauge(metrics_text: str, name: str) -> float | None:
    """The value of an unlabelled gauge in a Prometheus text exposition, or None."""
    for line in metrics_text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split(" ", 1)[1])
    return None
