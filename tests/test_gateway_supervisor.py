"""Background tasks under a supervisor: a crash is logged with its traceback, the task restarts
after a backoff, and the gateway shows it as degraded; a task that returns is done."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from gateway.supervisor import Supervisor


async def test_a_crashed_task_is_logged_restarted_and_shown_degraded() -> None:
    runs: list[int] = []
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError(f"crash {len(runs)}")
        done.set()

    supervisor = Supervisor(initial_backoff=0.01, max_backoff=0.05)
    with capture_logs() as events:
        supervisor.start("flaky", flaky)
        await asyncio.wait_for(done.wait(), 5)
    await supervisor.stop()
    assert len(runs) == 3
    assert supervisor.health["flaky"].restarts == 2
    assert supervisor.health["flaky"].last_error == "RuntimeError: crash 2"
    assert supervisor.degraded == ["flaky"]
    crashes = [e for e in events if e["event"] == "background task crashed; restarting"]
    assert len(crashes) == 2
    assert all(e["exc_info"] is True and e["log_level"] == "error" for e in crashes)


async def test_a_task_that_returns_is_not_restarted() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    supervisor = Supervisor(initial_backoff=0.01)
    supervisor.start("once", once)
    # Its task ends with the job: no restart to wait for.
    await asyncio.wait_for(asyncio.gather(*supervisor._tasks), 5)
    await supervisor.stop()
    assert runs == [1]
    assert supervisor.degraded == []
