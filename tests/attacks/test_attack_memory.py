"""Finding: unauthenticated memory exhaustion. Nothing unauthenticated costs the hub memory
beyond its body budget, slow senders are cut off at their deadline, /healthz stays fast."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import attack_process
import pytest
from flood import Flood, SlowSender, healthz_seconds, slow_request
from hubproc import HubProcess

from hub.config import HubSection

hub_process_fixture = attack_process.hub_process_fixture
DEFAULTS = HubSection(cell_id="x", root_key="x")
BUDGET = DEFAULTS.body_memory_budget_bytes
BODY_DEADLINE = DEFAULTS.body_grace_seconds  # the slow bodies declare only 1000 bytes
MARGIN = 5.0  # seconds of scheduling slack on a loaded machine
# /healthz while the hub reads and hashes two 64 MiB bodies on the event loop: well under a
# second on an idle machine, up to about one on two cores shared with other test runs.
HEALTHZ_FAST = 2.0


async def test_floods_of_big_and_slow_bodies_stay_within_the_budget(
    hub_process: HubProcess,
) -> None:
    assert hub_process.process is not None
    flood = Flood(
        hub_process.port,
        hub_process.process.pid,
        "caw",
        hub_process.members["caw"].identity.key_id,
        DEFAULTS.max_request_bytes - 1,
        hub_process.binding,
        count=12,
    )
    figures = await flood.run()
    assert figures.rss_peak - figures.rss_before <= BUDGET, figures
    assert set(figures.big_statuses) <= {400, 401, 503, None}, figures.big_statuses
    assert len(figures.slow_closed_after) == flood.count
    assert max(figures.slow_closed_after) <= BODY_DEADLINE + 1000 / 131072 + MARGIN, figures
    assert figures.healthz_worst < HEALTHZ_FAST, figures
    assert await healthz_seconds(hub_process.port) < HEALTHZ_FAST


@pytest.fixture(name="impatient_hub")
def impatient_hub_fixture(store_kind: str, tmp_path: Path) -> Iterator[HubProcess]:
    """A hub whose header deadline is 2 s instead of the default 20 s."""
    with attack_process.hub_process(store_kind, tmp_path, "header_timeout_seconds = 2") as hub:
        yield hub


async def test_slow_headers_are_cut_off_at_the_header_deadline(impatient_hub: HubProcess) -> None:
    senders = [SlowSender() for _ in range(8)]
    head = b"POST /v1/cases HTTP/1.1\r\nHost: hub\r\n"
    await asyncio.gather(
        *(slow_request(impatient_hub.port, head, b"X-Slow: 1\r\n", 0.3, s) for s in senders)
    )
    closed = [s.closed_after for s in senders]
    assert all(c is not None and c <= 2 + MARGIN for c in closed), closed
    assert await healthz_seconds(impatient_hub.port) < HEALTHZ_FAST
