"""Finding: the case-existence oracle. A non-member gets byte-identical answers whether the
case exists or not, and whatever its state."""

from __future__ import annotations

import attack_harness
import hub_harness
from hub_harness import HubHarness

clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture


async def case_in(harness: HubHarness, label: str, state: str) -> str:
    case_ref = attack_harness.minted(label)
    await harness.case_in(case_ref, state, ["caw"])
    return case_ref


async def test_a_non_member_cannot_tell_whether_a_case_exists(harness: HubHarness) -> None:
    refs = {
        "unknown": attack_harness.minted("never opened"),
        "screening": await case_in(harness, "in screening", "in_screening"),
        "received": await case_in(harness, "received", "signaal_ontvangen"),
        "agenda": await case_in(harness, "on the agenda", "geagendeerd"),
    }
    answers = {}
    for name, case_ref in refs.items():
        # clb (a deelnemer, on none of these cases) answers a screening question it never got.
        envelope = harness.seal("clb", ["coord"], purpose="screening_antwoord", case_ref=case_ref)
        status, body = await attack_harness.raw(harness, "clb", "POST", "/v1/envelopes", envelope)
        answers[name] = (status, body)
    assert len(set(answers.values())) == 1, answers
    assert answers["unknown"][0] == 409


async def test_reading_a_case_gives_a_non_member_the_unknown_answer(harness: HubHarness) -> None:
    known = await case_in(harness, "read me", "in_screening")
    unknown = attack_harness.minted("not there")
    seen = await attack_harness.raw(harness, "clb", "GET", f"/v1/cases/{known}")
    not_there = await attack_harness.raw(harness, "clb", "GET", f"/v1/cases/{unknown}")
    # The reference is not in the answer: only status and body are compared, byte for byte.
    assert seen == not_there
    assert seen[0] == 404
