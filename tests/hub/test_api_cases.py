"""The case registry through the hub's API: open, members, meetings, transitions, and refusals.

Only the coordinator changes cases (spec §8.2); every change is a log leaf, every refusal of an
authenticated request one ``refusal`` leaf and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import hub_harness
import msgspec
import pytest
from hub_harness import RETENTION_DAYS, HubHarness, refused
from structlog.testing import capture_logs

from livcr_exchange.audit.leaves import CaseMembership, CaseTransition, MeetingRecorded

# The fixtures `clock` and `harness` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture

CASE = "case-wqxym77u5d5bokhu6ceatadtga"
MEETING = "meeting-2030-02"


async def test_open_case_logs_its_state_and_members(harness: HubHarness) -> None:
    before = await harness.snapshot()
    case = await harness.client("coord").open_case(CASE, ["caw", "io-politie"])
    assert case == {
        "case_ref": CASE,
        "state": "signaal_ontvangen",
        "owner": None,
        "referrer": None,
        "members": ["caw", "coord", "io-politie"],
        "meetings": {},
    }
    now = harness.clock()
    assert await harness.leaves_since(before.counts["log_size"]) == [
        CaseTransition(now, CASE, "coord", "none", "signaal_ontvangen", "none"),
        CaseMembership(now, CASE, "coord", ("caw", "coord", "io-politie"), ()),
    ]
    assert await harness.client("caw").case(CASE) == case  # a member may look
    assert await harness.client("coord").case(CASE) == case


async def test_members_change_and_owner(harness: HubHarness) -> None:
    coord = harness.client("coord")
    await coord.open_case(CASE, ["caw"])
    before = await harness.snapshot()
    case = await coord.change_members(CASE, add=["clb", "io-politie"], remove=["caw"], owner="clb")
    assert (case["members"], case["owner"]) == (["clb", "coord", "io-politie"], "clb")
    (leaf,) = await harness.leaves_since(before.counts["log_size"])
    assert leaf == CaseMembership(harness.clock(), CASE, "coord", ("clb", "io-politie"), ("caw",))
    assert await coord.case(CASE) == case


async def test_meeting_is_recorded_with_who_was_present(harness: HubHarness) -> None:
    coord = harness.client("coord")
    await coord.open_case(CASE, ["caw", "io-politie"])
    before = await harness.snapshot()
    case = await coord.record_meeting(CASE, MEETING, ["io-politie", "coord"])
    assert case["meetings"] == {MEETING: ["coord", "io-politie"]}
    (leaf,) = await harness.leaves_since(before.counts["log_size"])
    assert leaf == MeetingRecorded(harness.clock(), CASE, MEETING, "coord", ("coord", "io-politie"))


async def test_transitions_follow_the_table_and_closing_schedules_the_purge(
    harness: HubHarness,
) -> None:
    coord = harness.client("coord")
    await coord.open_case(CASE, ["caw"])
    steps: list[tuple[str, str | None]] = [
        ("in_screening", None),
        ("geagendeerd", None),
        ("besproken", None),
        ("traject_lopend", None),
        ("geagendeerd", None),
        ("besproken", None),
        ("afgesloten", "traject_afgerond"),
        ("in_screening", None),  # reopened within retention
        ("afgesloten", "doorverwezen"),
        ("gewist", None),
    ]
    before = await harness.snapshot()
    state = "signaal_ontvangen"
    expected = []
    for target, reason in steps:
        harness.clock.advance(60)
        case = await coord.move_case(CASE, target, reason)
        assert case["state"] == target
        expected.append(
            CaseTransition(harness.clock(), CASE, "coord", state, target, reason or "none")
        )
        record = await harness.store.case(CASE)
        assert record is not None
        if target == "afgesloten":
            assert record.closed_at == harness.clock()
            assert record.purge_after == harness.clock() + RETENTION_DAYS * 86_400
        elif target == "in_screening":
            assert record.purge_after is None
        state = target
    assert await harness.leaves_since(before.counts["log_size"]) == expected


@pytest.mark.parametrize(
    ("state", "target", "reason"),
    [
        ("signaal_ontvangen", "besproken", None),  # skips the table
        ("in_screening", "afgesloten", None),  # closing needs a reason
        ("in_screening", "geagendeerd", "andere"),  # only closing takes one
        ("signaal_ontvangen", "signaal_ontvangen", None),
    ],
)
async def test_illegal_transition_is_refused(
    harness: HubHarness, state: str, target: str, reason: str | None
) -> None:
    await harness.case_in(CASE, state, ["caw"])
    before = await harness.snapshot()
    with capture_logs() as events:
        problem = await refused(harness.client("coord").move_case(CASE, target, reason))
    assert (problem.status, problem.code) == (409, "illegal_transition")
    await harness.assert_refused(
        before, actor="coord", action="move_case", code="illegal_transition"
    )
    assert [e["code"] for e in events if e["event"] == "refusal"] == ["illegal_transition"]


@pytest.mark.parametrize(
    "body",
    [
        {"to": "opgelost"},  # not a state
        {"to": "afgesloten", "reason": "verveeld"},  # not a reason
        {"to": "in_screening", "extra": 1},  # unknown field
        {},  # no target
    ],
)
async def test_transition_with_an_unknown_state_or_field_is_malformed(
    harness: HubHarness, body: dict[str, Any]
) -> None:
    await harness.client("coord").open_case(CASE, ["caw"])
    before = await harness.snapshot()
    problem = await refused(
        harness.client("coord").call(
            "POST", f"/v1/cases/{CASE}/transition", body=msgspec.json.encode(body)
        )
    )
    assert (problem.status, problem.code) == (400, "malformed")
    await harness.assert_refused(before, actor="coord", action="move_case", code="malformed")


# Only the coordinator manages cases.
CASE_OPERATIONS = [
    ("open_case", lambda c: c.open_case("case-wbtja7wrsss2m5f6iequpznnkq", ["caw"])),
    ("change_members", lambda c: c.change_members(CASE, add=["caw"])),
    ("record_meeting", lambda c: c.record_meeting(CASE, MEETING, ["caw"])),
    ("move_case", lambda c: c.move_case(CASE, "in_screening")),
]


@pytest.mark.parametrize(
    ("action", "operation"), CASE_OPERATIONS, ids=[a for a, _ in CASE_OPERATIONS]
)
@pytest.mark.parametrize("caller", ["caw", "io-politie"])
async def test_non_coordinator_may_not_manage_cases(
    harness: HubHarness, caller: str, action: str, operation: Any
) -> None:
    await harness.client("coord").open_case(CASE, ["caw", "io-politie"])
    before = await harness.snapshot()
    problem = await refused(operation(harness.client(caller)))
    assert (problem.status, problem.code) == (403, "forbidden")
    await harness.assert_refused(before, actor=caller, action=action, code="forbidden")


@pytest.mark.parametrize("case_ref", [CASE, "case-jx2hvzw6rbxt26tdevg67ib7fm"])
async def test_non_member_learns_nothing_about_a_case(harness: HubHarness, case_ref: str) -> None:
    await harness.client("coord").open_case(CASE, ["caw"])
    before = await harness.snapshot()
    problem = await refused(harness.client("clb").case(case_ref))
    assert (problem.status, problem.code) == (404, "not_found")
    # The same answer whether the case exists or not; the probe itself is on the record.
    await harness.assert_refused(before, actor="clb", action="get_case", code="not_found")


# Conflicts and malformed requests.
async def test_case_conflicts_are_refused(harness: HubHarness) -> None:
    coord = harness.client("coord")
    await coord.open_case(CASE, ["caw"])
    await coord.record_meeting(CASE, MEETING, ["caw"])
    attempts: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("open_case", lambda: coord.open_case(CASE, [])),
        ("record_meeting", lambda: coord.record_meeting(CASE, MEETING, ["coord"])),  # again
        ("record_meeting", lambda: coord.record_meeting(CASE, "meeting-b", ["clb"])),  # no member
        ("change_members", lambda: coord.change_members(CASE, owner="clb")),  # owner: a member
    ]
    for action, attempt in attempts:
        before = await harness.snapshot()
        problem = await refused(attempt())
        assert (problem.status, problem.code) == (409, "conflict")
        await harness.assert_refused(before, actor="coord", action=action, code="conflict")


@pytest.mark.parametrize(
    ("action", "method", "path", "body"),
    [
        ("open_case", "POST", "/v1/cases", b"{not json"),
        ("open_case", "POST", "/v1/cases", b'{"case_ref": "Case With Spaces"}'),
        (
            "open_case",
            "POST",
            "/v1/cases",
            b'{"case_ref": "case-f2ly4dcnioxdlzpnrdsgwu6a4a", "extra": true}',
        ),
        ("open_case", "POST", "/v1/cases", b"[]"),
        ("open_case", "POST", "/v1/cases", b""),
        (
            "open_case",
            "POST",
            "/v1/cases",
            b'{"case_ref": "case-f2ly4dcnioxdlzpnrdsgwu6a4a", "members": ["caw\\n"]}',
        ),
        ("change_members", "POST", f"/v1/cases/{CASE}/members", b'{"add": "caw"}'),
        ("record_meeting", "POST", f"/v1/cases/{CASE}/meetings", b'{"meeting_ref": "m"}'),
        ("move_case", "POST", f"/v1/cases/{CASE}/transition", b'{"to": 7}'),
        ("get_case", "GET", "/v1/cases/NOT.AN-IDENT", b""),
        ("move_case", "POST", "/v1/cases/NOT_AN_IDENT/transition", b'{"to": "in_screening"}'),
    ],
)
async def test_malformed_case_requests_are_refused(
    harness: HubHarness, action: str, method: str, path: str, body: bytes
) -> None:

    await harness.client("coord").open_case(CASE, ["caw"])
    before = await harness.snapshot()
    problem = await refused(harness.client("coord").call(method, path, body=body))
    assert (problem.status, problem.code) == (400, "malformed")
    await harness.assert_refused(before, actor="coord", action=action, code="malformed")


async def test_unknown_case_is_not_found_for_the_coordinator(harness: HubHarness) -> None:
    before = await harness.snapshot()
    problem = await refused(
        harness.client("coord").move_case("case-jx2hvzw6rbxt26tdevg67ib7fm", "in_screening")
    )
    assert (problem.status, problem.code) == (404, "not_found")
    await harness.assert_refused(before, actor="coord", action="move_case", code="not_found")


async def test_concurrent_case_changes_are_all_kept(harness: HubHarness) -> None:
    """Each change reads and writes the whole record; none may overwrite another's."""
    coord = harness.client("coord")
    await coord.open_case(CASE, ["caw", "clb"])
    before = await harness.snapshot()
    await asyncio.gather(
        coord.change_members(CASE, remove=["clb"]),
        coord.record_meeting(CASE, MEETING, ["caw"]),
        coord.move_case(CASE, "in_screening"),
    )
    case = await coord.case(CASE)
    assert case["members"] == ["caw", "coord"]  # the removal holds: clb is cut off
    assert case["meetings"] == {MEETING: ["caw"]}
    assert case["state"] == "in_screening"
    assert len(await harness.leaves_since(before.counts["log_size"])) == 3
