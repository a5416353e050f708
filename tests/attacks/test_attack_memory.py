"""Finding: unauthenticated memory exhaustion. Nothing unauthenticated costs the hub memory
beyond its body budget, slow senders are cut off at their deadline, /healthz stays fast."""

from __future__ import annotations

import attack_process
from flood import Flood, healthz_seconds
from hubproc import HubProcess

from hub.config import HubSection

hub_process_fixture = attack_process.hub_process_fixture
DEFAULTS = HubSection(cell_id="x", root_key="x")
BUDGET = DEFAULTS.body_memory_budget_bytes
BODY_DEADLINE = DEFAULTS.body_grace_seconds  # the slow bodies declare only 1000 bytes
MARGIN = 5.0  # seconds of scheduling slack on a loaded machine


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
        count=12,
    )
    figures = await flood.run()
    assert figures.rss_peak - figures.rss_before <= BUDGET, figures
    assert set(figures.big_statuses) <= {400, 401, 503, None}, figures.big_statuses
    assert len(figures.slow_closed_after) == flood.count
    assert max(figures.slow_closed_after) <= BODY_DEADLINE + 1000 / 131072 + MARGIN, figures
    assert figures.healthz_worst < 1.0, figures
    assert await healthz_seconds(hub_process.port) < 1.0
