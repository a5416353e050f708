"""Finding: metrics that tell an operator something. Accepted envelopes by their real purpose;
push-stream lifetimes apart from request latencies; refusals by code; connected gateways;
pending deliveries by age; purged cases."""

from __future__ import annotations

import asyncio
import time

import attack_harness
import hub_harness
from hub_harness import DAY, RETENTION_DAYS, HubHarness

from hub.app import purge_due_cases

clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture


async def samples(harness: HubHarness) -> dict[str, float]:
    async with harness.session.get(harness.url + "/metrics") as response:
        text = await response.text()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def until_sample(harness: HubHarness, name: str, value: float) -> None:
    deadline = time.monotonic() + 10
    while (await samples(harness)).get(name) != value:
        assert time.monotonic() < deadline, f"{name} never became {value}"
        await asyncio.sleep(0.05)


async def test_metrics_name_purposes_codes_streams_ages_and_purges(harness: HubHarness) -> None:
    case_ref = attack_harness.minted("metrics")
    await harness.case_in(case_ref, "in_screening", ["caw"])
    await harness.client("coord").submit(harness.seal("coord", ["caw"], case_ref=case_ref))
    await attack_harness.raw(harness, "caw", "GET", "/v1/inbox", headers={})  # malformed
    forged = harness.signed_headers("caw", "GET", "/v1/inbox")
    await attack_harness.raw(harness, "caw", "GET", "/v1/directory", headers=forged)

    socket = await harness.client("caw").stream()
    await socket.receive()  # the pending envelope
    await until_sample(harness, "livcr_hub_connected_gateways", 1)
    await socket.close()
    await until_sample(harness, "livcr_hub_connected_gateways", 0)
    await until_sample(harness, "livcr_hub_stream_seconds_count", 1)

    seen = await samples(harness)
    assert seen['livcr_hub_envelopes_accepted_total{purpose="screening_vraag"}'] == 1
    assert not any('purpose="any"' in name for name in seen)
    assert not any('route="/v1/stream"' in name for name in seen if "request_seconds" in name)
    assert seen['livcr_hub_refusals_total{code="malformed"}'] == 1
    assert seen['livcr_hub_refusals_total{code="bad_signature"}'] == 1
    assert seen['livcr_hub_deliveries_pending_by_age{age="under_1m"}'] == 1
    harness.clock.advance(2 * 3600)
    seen = await samples(harness)
    assert seen['livcr_hub_deliveries_pending_by_age{age="under_1m"}'] == 0
    assert seen['livcr_hub_deliveries_pending_by_age{age="under_1d"}'] == 1

    coord = harness.client("coord")
    await coord.move_case(case_ref, "afgesloten", "geen_radicaliseringsrisico")
    assert (await samples(harness))["livcr_hub_cases_purged"] == 0
    harness.clock.advance(RETENTION_DAYS * DAY + 1)
    await purge_due_cases(harness.hub)
    assert (await samples(harness))["livcr_hub_cases_purged"] == 1
