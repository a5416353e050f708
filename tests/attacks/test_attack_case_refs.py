"""Finding: guessable case references. The hub refuses any reference that is not in the minted
form (spec §8.3) wherever one names a case: opening it, an envelope's header, a case path."""

from __future__ import annotations

import json

import attack_harness
import hub_harness
import pytest
from hub_harness import HubHarness

from livcr_exchange.cases import check_case_ref

clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture
GUESSABLE = ["case-0001", "case-0002", "case-7k2m9q", "dossier-1"]


@pytest.mark.parametrize("case_ref", GUESSABLE)
async def test_a_guessable_reference_opens_no_case(harness: HubHarness, case_ref: str) -> None:
    body = json.dumps({"case_ref": case_ref, "members": ["caw"]}).encode()
    before = await harness.snapshot()
    status, answer = await attack_harness.raw(harness, "coord", "POST", "/v1/cases", body)
    assert (status, json.loads(answer)["code"]) == (400, "malformed")
    await harness.assert_refused(before, actor="coord", action="open_case", code="malformed")


@pytest.mark.parametrize("case_ref", GUESSABLE)
async def test_a_referral_under_a_guessable_reference_is_refused(
    harness: HubHarness, case_ref: str
) -> None:
    envelope = harness.seal("caw", ["coord"], purpose="aanmelding", case_ref=case_ref)
    before = await harness.snapshot()
    status, answer = await attack_harness.raw(harness, "caw", "POST", "/v1/envelopes", envelope)
    assert (status, json.loads(answer)["code"]) == (400, "malformed")
    after = await harness.snapshot()
    assert after.cases == before.cases
    assert after.pending == before.pending


async def test_a_case_path_with_a_guessable_reference_is_refused(harness: HubHarness) -> None:
    status, answer = await attack_harness.raw(harness, "coord", "GET", "/v1/cases/case-0001")
    assert (status, json.loads(answer)["code"]) == (400, "malformed")


async def test_a_minted_reference_opens_a_case(harness: HubHarness) -> None:
    case_ref = attack_harness.minted("a minted one")
    assert check_case_ref(case_ref) == case_ref
    case = await harness.client("coord").open_case(case_ref, ["caw"])
    assert case["case_ref"] == case_ref
