"""Background tasks that do not die quietly: a crash is logged with its traceback, the task is
restarted after a backoff, and the gateway reports itself ``degraded`` meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .eventlog import EventLogger, event_logger

Job = Callable[[], Awaitable[None]]


@dataclass
class TaskHealth:
    restarts: int = 0
    last_error: str | None = None
    failed_at: float | None = None


@dataclass
class Supervisor:
    """Runs each job as a task; a job that returns is done, one that raises is restarted."""

    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    log: EventLogger = field(default_factory=lambda: event_logger(None))
    health: dict[str, TaskHealth] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, name: str, job: Job) -> None:
        self.health[name] = TaskHealth()
        self._tasks.append(asyncio.create_task(self._run(name, job), name=f"gateway-{name}"))

    def spawn(self, name: str, job: Awaitable[object]) -> None:
        """A one-off task, kept so that ``stop`` ends it and its failure is logged."""
        self._tasks.append(asyncio.create_task(self._once(name, job), name=f"gateway-{name}"))

    async def _once(self, name: str, job: Awaitable[object]) -> None:
        try:
            await job
        except Exception:
            self.log.exception("background step failed", task=name)

    async def _run(self, name: str, job: Job) -> None:
        health = self.health[name]
        delay = self.initial_backoff
        while True:
            started = time.monotonic()
            try:
                await job()
            except Exception as exc:
                health.restarts += 1
                health.last_error = f"{type(exc).__name__}: {exc}"
                health.failed_at = time.time()
                self.log.exception(
                    "background task crashed; restarting", task=name, in_seconds=delay
                )
            else:
                return
            if time.monotonic() - started > self.max_backoff:
                delay = self.initial_backoff  # it ran well for a while: a fresh failure
            await asyncio.sleep(delay)
            delay = min(self.max_backoff, delay * 2)

    @property
    def degraded(self) -> list[str]:
        """Names of the tasks that crashed in the last minute."""
        now = time.time()
        return sorted(
            name
            for name, health in self.health.items()
            if health.failed_at is not None and now - health.failed_at < 60
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
