"""The gateway's local HTTP API through real HTTP: a hub process, four gateways, their APIs.

Every answer is checked against specs/gateway-api.yaml as well as for what it says. The cell
(coordinator, two deelnemers, the police information officer) lives for the whole module; each
test works on its own case reference and reads messages from its own cursor.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from factories import case_ref
from gateway_harness import (
    PARTICIPANTS,
    SPEC_PATH,
    GatewayCell,
    RunningGateway,
    RunningGateways,
    load_spec,
)
from waiting import gauge, wait_until

from gateway.api import MAX_API_REQUEST_BYTES, create_api, serving
from livcr_exchange.cases import check_case_ref
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import encode_body

SPEC = load_spec()
MEETING = "meeting-2030-01"
NEVER = 2**62  # a cursor beyond any message


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayCell]:
    cell = GatewayCell.create(tmp_path_factory.mktemp("gateway-api"))
    try:
        yield cell
    finally:
        cell.hub.stop()


@pytest.fixture(scope="module")
def gws(cell: GatewayCell) -> Iterator[RunningGateways]:
    running = RunningGateways(cell, list(PARTICIPANTS))
    try:
        yield running
    finally:
        running.close()


def call(
    gw: RunningGateway,
    method: str,
    route: str,
    status: int,
    *,
    case_ref: str | None = None,
    token: str | None = None,
    **kwargs: Any,
) -> Any:
    """One request; assert the status and that the answer is as the spec documents it."""
    path = route if case_ref is None else route.replace("{case_ref}", case_ref)
    response = gw.request(method, path, token=token, **kwargs)
    assert response.status_code == status, response.text
    SPEC[route][method].validate_response(response)
    return response.json()


def body(purpose: str, **changes: Any) -> dict[str, Any]:
    """The example body of a purpose, as the JSON object a client sends."""
    example = example_body(purpose)
    if changes:
        example = msgspec.structs.replace(example, **changes)
    decoded: dict[str, Any] = msgspec.json.decode(encode_body(example))
    return decoded


def send(
    gw: RunningGateway,
    case_ref: str,
    purpose: str,
    to: list[str],
    status: int = 201,
    **fields: Any,
) -> Any:
    request = {"case_ref": case_ref, "purpose": purpose, "to": to, **fields}
    request.setdefault("body", body(purpose))
    return call(gw, "POST", "/v1/messages", status, json=request)


def cursor(gw: RunningGateway) -> int:
    page = call(gw, "GET", "/v1/messages", 200, params={"limit": 1000})
    while page["messages"]:
        page = call(gw, "GET", "/v1/messages", 200, params={"after": page["next_after"]})
    return int(page["next_after"])


def receive(
    gw: RunningGateway, after: int, purpose: str, case_ref: str, timeout: float = 20
) -> dict[str, Any]:
    """Long-poll from ``after`` until a message of this purpose and case arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = call(gw, "GET", "/v1/messages", 200, params={"after": after, "wait": 5})
        for message in page["messages"]:
            if message["purpose"] == purpose and message["case_ref"] == case_ref:
                return dict(message)
        after = page["next_after"]
    raise AssertionError(f"{gw.participant_id} received no {purpose} on {case_ref}")


def new_case(gws: RunningGateways, members: list[str]) -> str:
    case_ref: str = call(gws["coord"], "POST", "/v1/cases", 201, json={"members": members})[
        "case_ref"
    ]
    return case_ref


def move(gws: RunningGateways, case_ref: str, to: str, reason: str | None = None) -> Any:
    request = {"to": to} if reason is None else {"to": to, "reason": reason}
    return call(
        gws["coord"],
        "POST",
        "/v1/cases/{case_ref}/transition",
        200,
        case_ref=case_ref,
        json=request,
    )


# Authentication.
def test_healthz_needs_no_token(gws: RunningGateways) -> None:
    response = gws["caw"].session.get(gws["caw"].url + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    SPEC["/healthz"]["GET"].validate_response(response)


@pytest.mark.parametrize(
    ("method", "route"),
    [
        (operation.method.upper(), operation.path)
        for operation in (result.ok() for result in SPEC.get_all_operations())
        if operation.path not in {"/healthz", "/readyz"}
    ],
)
@pytest.mark.parametrize("credentials", ["none", "wrong", "basic", "empty"])
def test_every_operation_needs_the_token(
    gws: RunningGateways, method: str, route: str, credentials: str
) -> None:
    gw = gws["caw"]
    headers = {
        "none": {},
        "wrong": {"Authorization": "Bearer " + "x" * len(gw.token)},
        "basic": {"Authorization": f"Basic {gw.token}"},
        "empty": {"Authorization": "Bearer "},
    }[credentials]
    path = route.replace("{case_ref}", "case-a5tzu7viruk5pplggs2g7yusza")
    before = call(gw, "GET", "/v1/status", 200)
    response = gw.session.request(method, gw.url + path, headers=headers, json={}, timeout=10)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthenticated"
    SPEC[route][method].validate_response(response)
    assert call(gw, "GET", "/v1/status", 200) == before


def test_unknown_paths_are_401_without_and_404_with_the_token(gws: RunningGateways) -> None:
    gw = gws["caw"]
    response = gw.session.get(gw.url + "/v1/nothing-here", timeout=10)
    assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")
    response = gw.request("GET", "/v1/nothing-here")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_a_short_token_is_refused(gws: RunningGateways) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        create_api(gws["caw"].gateway, "  short  ")


# Status and messages.
def test_status(gws: RunningGateways) -> None:
    status = call(gws["coord"], "GET", "/v1/status", 200)
    assert status["participant"] == "coord"
    assert status["halted"] is None
    assert status["outbox_failed"] >= 0


def test_referral_is_sent_received_and_read_by_cursor(gws: RunningGateways) -> None:
    coord, caw = gws["coord"], gws["caw"]
    after = cursor(coord)
    case_ref = "case-dtsti7tl6f7rah5rpceci2rioy"
    receipt = send(caw, case_ref, "aanmelding", ["coord"])
    assert receipt["tree_size"] > receipt["leaf_index"] >= 0
    assert receipt["logged_at"] > 0
    assert receipt["checkpoint"].startswith(f"livcr-exchange/testcell\n{receipt['tree_size']}\n")
    message = receive(coord, after, "aanmelding", case_ref)
    assert message["message_id"] == receipt["message_id"]
    assert message["sender_id"] == "caw"
    assert message["recipients"] == ["coord"]
    assert message["logged_at"] == receipt["logged_at"]
    assert message["body"] == body("aanmelding")
    assert message["deleted_at"] is None
    # The cursor does not consume: the same request gives the same page.
    first = call(coord, "GET", "/v1/messages", 200, params={"after": after})
    again = call(coord, "GET", "/v1/messages", 200, params={"after": after})
    assert first == again
    assert first["next_after"] == first["messages"][-1]["seq"] == message["seq"]
    empty = call(coord, "GET", "/v1/messages", 200, params={"after": first["next_after"]})
    assert empty == {"messages": [], "next_after": first["next_after"]}
    # Handed over through the API: no longer unread.
    assert call(coord, "GET", "/v1/status", 200)["unread"] == 0
    # The sender's dossier holds its copy with the receipt's log position.
    (record,) = call(caw, "GET", "/v1/dossier", 200, params={"case_ref": case_ref})["records"]
    assert record["direction"] == "sent"
    assert record["leaf_index"] == receipt["leaf_index"]
    assert record["body"] == body("aanmelding")


def test_paging_with_limit(gws: RunningGateways) -> None:
    coord, caw = gws["coord"], gws["caw"]
    after = cursor(coord)
    for n in range(3):
        send(caw, case_ref(f"paging-{n}"), "aanmelding", ["coord"])
    receive(coord, after, "aanmelding", "case-lyjsu7v3trkrorrlxsc6tplsju")
    seen = []
    position = after
    while True:
        page = call(coord, "GET", "/v1/messages", 200, params={"after": position, "limit": 2})
        assert len(page["messages"]) <= 2
        if not page["messages"]:
            break
        seen += [m["case_ref"] for m in page["messages"]]
        position = page["next_after"]
    assert seen == [
        "case-fnmjtn4koynpsohwybhhoywqja",
        "case-iqvwkepvqpcmlsg3ijvb4lzv2e",
        "case-lyjsu7v3trkrorrlxsc6tplsju",
    ]


def test_long_poll_wakes_when_a_message_arrives(gws: RunningGateways) -> None:
    coord, caw = gws["coord"], gws["caw"]
    after = cursor(coord)
    answer: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        response = coord.request("GET", "/v1/messages", params={"after": after, "wait": 25})
        answer.update(response.json(), elapsed=time.monotonic() - started)

    poller = threading.Thread(target=poll)
    poller.start()
    wait_until(lambda: long_polls(coord) == 1, "the long poll to be parked")
    send(caw, "case-tpbcrjmekuqpk6hwc4dqhnuuvq", "aanmelding", ["coord"])
    poller.join(timeout=30)
    assert answer["elapsed"] < 10
    assert [m["case_ref"] for m in answer["messages"]] == ["case-tpbcrjmekuqpk6hwc4dqhnuuvq"]
    assert long_polls(coord) == 0  # the gauge counts polls still waiting


def long_polls(gw: RunningGateway) -> float | None:
    """How many long polls ``gw`` holds, as its metrics say."""
    return gauge(gw.request("GET", "/metrics").text, "livcr_gateway_long_polls")


def test_long_poll_times_out_empty(gws: RunningGateways) -> None:
    started = time.monotonic()
    page = call(gws["coord"], "GET", "/v1/messages", 200, params={"after": NEVER, "wait": 0.6})
    assert time.monotonic() - started >= 0.5
    assert page == {"messages": [], "next_after": NEVER}


@pytest.mark.parametrize(
    "params",
    [
        {"after": "-1"},
        {"after": "x"},
        {"after": str(2**63)},
        {"after": "9" * 5000},
        {"limit": "0"},
        {"limit": "1001"},
        {"wait": "31"},
        {"wait": "nan"},
        {"wait": "inf"},
        {"wait": "-1"},
    ],
)
def test_bad_query_parameters(gws: RunningGateways, params: dict[str, str]) -> None:
    problem = call(gws["coord"], "GET", "/v1/messages", 400, params=params)
    assert problem["code"] == "malformed"


def test_send_without_waiting(gws: RunningGateways) -> None:
    coord, caw = gws["coord"], gws["caw"]
    after = cursor(coord)
    queued = send(
        caw, "case-a2xax3wvux5xcyx3kzwvuimgua", "aanmelding", ["coord"], status=202, wait=False
    )
    assert queued["state"] == "queued"
    message = receive(coord, after, "aanmelding", "case-a2xax3wvux5xcyx3kzwvuimgua")
    assert message["message_id"] == queued["message_id"]


# Refusals before anything is stored.
def _counts(gw: RunningGateway) -> dict[str, int]:
    """Store counts once an earlier test's queued message (if any) has left the outbox."""
    deadline = time.monotonic() + 10
    status = call(gw, "GET", "/v1/status", 200)
    while status["outbox_pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
        status = call(gw, "GET", "/v1/status", 200)
    return {k: status[k] for k in ("outbox_pending", "outbox_failed", "dossier_records")}


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


REFERRAL = body("aanmelding")


@pytest.mark.parametrize(
    ("case", "purpose", "message_body"),
    [
        ("unknown field", "aanmelding", {**REFERRAL, "rijksregisternummer": "x"}),
        ("missing field", "aanmelding", without(REFERRAL, "minor")),
        ("too long", "aanmelding", {**REFERRAL, "description": "x" * 1001}),
        ("control character", "aanmelding", {**REFERRAL, "urgency": "normaal\n"}),
        ("special data, no reason", "aanmelding", {**REFERRAL, "special_category": True}),
        ("not an object", "aanmelding", ["aanmelding"]),
        ("null", "aanmelding", None),
    ],
)
def test_body_schema_violations_store_nothing(
    gws: RunningGateways, case: str, purpose: str, message_body: Any
) -> None:
    caw = gws["caw"]
    before = _counts(caw)
    problem = send(
        caw, "case-wp6cinqpgbssy3uojs3m5jt7im", purpose, ["coord"], status=422, body=message_body
    )
    assert problem["code"] == "body_schema_violation", case
    assert _counts(caw) == before
    assert call(
        caw, "GET", "/v1/dossier", 200, params={"case_ref": "case-wp6cinqpgbssy3uojs3m5jt7im"}
    ) == {"records": []}


def test_a_body_naming_another_case_stores_nothing(gws: RunningGateways) -> None:
    coord = gws["coord"]
    before = _counts(coord)
    fiche = body("terugkoppelingsfiche")  # names its own case, not case-schema
    problem = send(
        coord,
        "case-m62t7u7jc56u3dtyz6wdfgkdsy",
        "terugkoppelingsfiche",
        ["politie"],
        status=422,
        body=fiche,
    )
    assert problem["code"] == "body_schema_violation"
    assert _counts(coord) == before


def test_a_body_may_leave_out_its_purpose_tag(gws: RunningGateways) -> None:
    caw, coord = gws["caw"], gws["coord"]
    after = cursor(coord)
    send(
        caw,
        "case-6s476e3zfvcvpzm35xukkxsrie",
        "aanmelding",
        ["coord"],
        body=without(REFERRAL, "purpose"),
    )
    received = receive(coord, after, "aanmelding", "case-6s476e3zfvcvpzm35xukkxsrie")
    assert received["body"] == REFERRAL  # sealed with the tag the gateway filled in


def test_a_body_tagged_with_another_purpose_has_its_own_code(gws: RunningGateways) -> None:
    caw = gws["caw"]
    before = _counts(caw)
    tagged = {**REFERRAL, "purpose": "screening_antwoord"}
    problem = send(
        caw, "case-qr4yr7gvgiw5yctwf534oyypyy", "aanmelding", ["coord"], status=422, body=tagged
    )
    assert problem["code"] == "body_purpose_mismatch"
    assert problem["detail"] == (
        "the body is tagged purpose 'screening_antwoord' but the message's purpose is"
        " 'aanmelding'; leave the tag out or make it match"
    )
    assert _counts(caw) == before


def test_the_role_is_checked_before_the_body(gws: RunningGateways) -> None:
    """A deelnemer may not ask a screening question: it learns that, not a missing field."""
    problem = send(
        gws["caw"],
        "case-yz77rh344cddrhng3jk3itgnme",
        "screening_vraag",
        ["politie"],
        status=403,
        body={},
    )
    assert problem["code"] == "purpose_not_allowed"
    assert "legal_ground" not in problem["detail"]


def message(**fields: Any) -> dict[str, Any]:
    return {
        "case_ref": "case-f2ly4dcnioxdlzpnrdsgwu6a4a",
        "purpose": "aanmelding",
        "to": ["coord"],
        "body": {},
        **fields,
    }


BAD_COSIGNATURE = {"signer_id": "caw", "signer_key_id": "00", "signature": "AA==", "deadline": 1}


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        (without(message(), "body"), 400, "malformed"),
        (message(case_ref="Case X"), 400, "malformed"),
        (message(to=[]), 400, "malformed"),
        (message(x=1), 400, "malformed"),
        (message(wait="no"), 400, "malformed"),
        (message(to=["coord"] * 65), 400, "malformed"),
        (message(body=REFERRAL, cosignatures=[BAD_COSIGNATURE]), 400, "malformed"),
        (message(purpose="roddel"), 403, "purpose_not_allowed"),
        (message(to=["nobody"], body=REFERRAL), 403, "recipient_not_allowed"),
    ],
)
def test_bad_requests_store_nothing(
    gws: RunningGateways, request_body: dict[str, Any], status: int, code: str
) -> None:
    caw = gws["caw"]
    before = _counts(caw)
    problem = call(caw, "POST", "/v1/messages", status, json=request_body)
    assert problem["code"] == code
    assert _counts(caw) == before


@pytest.mark.parametrize(
    ("sender", "purpose", "to", "code"),
    [
        # Enrolment lists the purposes a role may only receive too: the role decides.
        ("caw", "screening_vraag", ["politie"], "purpose_not_allowed"),
        ("politie", "uitnodiging_overleg", ["caw"], "purpose_not_allowed"),
        ("coord", "aanmelding", ["coord"], "purpose_not_allowed"),
        ("caw", "screening_antwoord", ["politie"], "recipient_not_allowed"),
        ("caw", "aanmelding", ["caw"], "recipient_not_allowed"),
    ],
)
def test_what_a_role_may_only_receive_is_refused_before_sealing(
    gws: RunningGateways, sender: str, purpose: str, to: list[str], code: str
) -> None:
    """With the hub's code and status, but before anything is sealed, queued or sent: a
    message the hub refused would count in ``outbox_failed``."""
    gw = gws[sender]
    entries = gw.gateway.directory.participants(int(time.time()))
    assert purpose in entries[sender].allowed_purposes
    assert all(purpose in entries[r].allowed_purposes for r in to)
    case_ref = getattr(example_body(purpose), "case_ref", None) or "case-x77ht73lkhydoumrnwopgjrdwy"
    before = _counts(gw)
    problem = send(gw, case_ref, purpose, to, status=403)
    assert problem["code"] == code
    assert _counts(gw) == before


def test_invalid_json_is_malformed(gws: RunningGateways) -> None:
    problem = call(
        gws["caw"],
        "POST",
        "/v1/messages",
        400,
        data=b'{"case_ref": ',
        headers={"Content-Type": "application/json"},
    )
    assert problem["code"] == "malformed"


def test_oversized_request(gws: RunningGateways) -> None:
    caw = gws["caw"]
    before = _counts(caw)
    padding = "x" * MAX_API_REQUEST_BYTES
    problem = call(
        caw,
        "POST",
        "/v1/messages",
        413,
        json={
            "case_ref": "case-rxno6krrmm4nuzpvdnrfvlplai",
            "purpose": "aanmelding",
            "to": ["coord"],
            "body": padding,
        },
    )
    assert problem["code"] == "oversized"
    assert _counts(caw) == before


# The hub's refusals, passed through.
def test_hub_refusals_pass_through(gws: RunningGateways) -> None:
    coord, caw = gws["coord"], gws["caw"]
    problem = call(caw, "POST", "/v1/cases", 403, json={"members": ["clb"]})
    assert problem["code"] == "forbidden"
    case_ref = new_case(gws, ["caw"])
    problem = call(coord, "POST", "/v1/cases", 409, json={"members": [], "case_ref": case_ref})
    assert problem["code"] == "conflict"
    route = "/v1/cases/{case_ref}/transition"
    problem = call(coord, "POST", route, 409, case_ref=case_ref, json={"to": "besproken"})
    assert problem["code"] == "illegal_transition"
    problem = call(coord, "POST", route, 400, case_ref=case_ref, json={"to": "nergens"})
    assert problem["code"] == "malformed"
    problem = call(
        coord,
        "POST",
        route,
        404,
        case_ref="case-5eu7rup27elkozorx7xbcjzbeu",
        json={"to": "in_screening"},
    )
    assert problem["code"] == "not_found"
    problem = call(
        coord,
        "POST",
        "/v1/cases/{case_ref}/members",
        409,
        case_ref=case_ref,
        json={"owner": "politie"},
    )
    assert problem["code"] == "conflict"
    # Messages the hub refuses after the gateway sealed them: the hub's code and status. The
    # directory lets caw receive referrals' purpose, but only a coordinator is a recipient.
    failed_before = _counts(coord)["outbox_failed"]
    problem = send(coord, case_ref, "screening_vraag", ["caw"], status=409)
    assert problem["code"] == "case_state_forbids"
    assert _counts(coord)["outbox_failed"] == failed_before + 1


def test_case_calls_validate_their_input(gws: RunningGateways) -> None:
    coord = gws["coord"]
    problem = call(coord, "POST", "/v1/cases", 400, json={"members": "caw"})
    assert problem["code"] == "malformed"
    problem = call(
        coord,
        "POST",
        "/v1/cases/{case_ref}/meetings",
        400,
        case_ref="case-f2ly4dcnioxdlzpnrdsgwu6a4a",
        json={"present": []},
    )
    assert problem["code"] == "malformed"
    problem = call(coord, "POST", "/v1/cases/{case_ref}/erase", 400, case_ref="Case.X")
    assert problem["code"] == "malformed"
    problem = call(coord, "GET", "/v1/dossier", 400, params={"case_ref": "Case X"})
    assert problem["code"] == "malformed"


# A case from referral to erasure, with a co-signed feedback form to the police.
def test_case_lifecycle(gws: RunningGateways) -> None:
    coord, caw, clb, politie = (gws[p] for p in ("coord", "caw", "clb", "politie"))
    after = {p: cursor(gws[p]) for p in PARTICIPANTS}
    case_ref = new_case(gws, ["caw", "clb", "politie"])
    assert move(gws, case_ref, "in_screening")["state"] == "in_screening"

    send(coord, case_ref, "screening_vraag", ["caw"])
    question = receive(caw, after["caw"], "screening_vraag", case_ref)
    assert question["sender_id"] == "coord"
    assert question["body"] == body("screening_vraag")
    send(caw, case_ref, "screening_antwoord", ["coord"])
    assert receive(coord, after["coord"], "screening_antwoord", case_ref)["body"]["answer"] == (
        "known"
    )

    move(gws, case_ref, "geagendeerd")
    invitation = body("uitnodiging_overleg", meeting_ref=MEETING, case_refs=(case_ref,))
    send(coord, case_ref, "uitnodiging_overleg", ["caw", "clb", "politie"], body=invitation)
    for gw in (caw, clb, politie):
        assert receive(gw, after[gw.participant_id], "uitnodiging_overleg", case_ref)["body"] == (
            invitation
        )
    move(gws, case_ref, "besproken")
    case = call(
        coord,
        "POST",
        "/v1/cases/{case_ref}/meetings",
        201,
        case_ref=case_ref,
        json={"meeting_ref": MEETING, "present": ["coord", "caw", "politie"]},
    )
    assert case["meetings"] == {MEETING: ["caw", "coord", "politie"]}
    case = call(
        coord,
        "POST",
        "/v1/cases/{case_ref}/members",
        200,
        case_ref=case_ref,
        json={"owner": "caw"},
    )
    assert (case["owner"], case["state"]) == ("caw", "besproken")
    minutes = body("verslag_besluit", meeting_ref=MEETING)
    send(coord, case_ref, "verslag_besluit", ["caw", "politie"], body=minutes, meeting_ref=MEETING)
    receive(politie, after["politie"], "verslag_besluit", case_ref)

    # The feedback form: one co-signature from every member present, the sender included.
    fiche = body(
        "terugkoppelingsfiche", case_ref=case_ref, meeting_ref=MEETING, nonce=os.urandom(32).hex()
    )
    # Co-signers agree to the recipients and a deadline for the hub to log it (spec §7.4).
    deadline = int(time.time()) + 3600
    cosign = {
        "case_ref": case_ref,
        "meeting_ref": MEETING,
        "body": fiche,
        "to": ["politie"],
        "deadline": deadline,
    }
    signatures = {
        p: call(gws[p], "POST", "/v1/cosignatures", 200, json=cosign)
        for p in ("coord", "caw", "politie")
    }
    assert {s["signer_id"] for s in signatures.values()} == {"coord", "caw", "politie"}
    # The body is re-encoded canonically: key order does not change what is signed.
    reordered = {**cosign, "body": dict(reversed(list(fiche.items())))}
    assert call(caw, "POST", "/v1/cosignatures", 200, json=reordered) == signatures["caw"]
    problem = call(
        caw, "POST", "/v1/cosignatures", 422, json={**cosign, "meeting_ref": "meeting-other"}
    )
    assert problem["code"] == "body_schema_violation"

    incomplete = [signatures["coord"], signatures["caw"]]
    problem = send(
        coord,
        case_ref,
        "terugkoppelingsfiche",
        ["politie"],
        status=403,
        body=fiche,
        meeting_ref=MEETING,
        cosignatures=incomplete,
    )
    assert problem["code"] == "cosignature_invalid"
    # Co-signed with a deadline that has passed: the hub refuses to log it.
    past = {
        p: call(gws[p], "POST", "/v1/cosignatures", 200, json={**cosign, "deadline": 1})
        for p in ("coord", "caw", "politie")
    }
    problem = send(
        coord,
        case_ref,
        "terugkoppelingsfiche",
        ["politie"],
        status=403,
        body=fiche,
        meeting_ref=MEETING,
        cosignatures=list(past.values()),
    )
    assert problem["code"] == "cosignature_invalid"
    # One block carries one deadline: co-signatures made for different ones are refused.
    problem = send(
        coord,
        case_ref,
        "terugkoppelingsfiche",
        ["politie"],
        status=400,
        body=fiche,
        meeting_ref=MEETING,
        cosignatures=[past["coord"], signatures["caw"], signatures["politie"]],
    )
    assert problem["code"] == "malformed"
    receipt = send(
        coord,
        case_ref,
        "terugkoppelingsfiche",
        ["politie"],
        body=fiche,
        meeting_ref=MEETING,
        cosignatures=list(signatures.values()),
    )
    form = receive(politie, after["politie"], "terugkoppelingsfiche", case_ref)
    assert (form["message_id"], form["body"], form["meeting_ref"]) == (
        receipt["message_id"],
        fiche,
        MEETING,
    )

    # The coordinator's dossier and subject-access export.
    forms = call(
        coord,
        "GET",
        "/v1/dossier",
        200,
        params={"case_ref": case_ref, "purpose": "terugkoppelingsfiche"},
    )["records"]
    # The form the hub refused was never sent: only the outbox keeps a trace of it.
    assert [(r["direction"], r["leaf_index"]) for r in forms] == [("sent", receipt["leaf_index"])]
    export = call(coord, "GET", "/v1/cases/{case_ref}/export", 200, case_ref=case_ref)
    assert export["case_ref"] == case_ref
    assert export["participant"] == "coord"
    assert export["checkpoint"].startswith("livcr-exchange/testcell\n")
    purposes = [r["purpose"] for r in export["records"]]
    assert purposes.count("screening_antwoord") == 1
    proved = [r for r in export["records"] if r["leaf_index"] is not None]
    assert proved
    assert all("inclusion_proof" in r for r in proved)

    # Closing with a deletion request: every recipient erases and attests it.
    move(gws, case_ref, "traject_lopend")
    move(gws, case_ref, "afgesloten", "traject_afgerond")
    send(coord, case_ref, "afsluiting", ["caw", "clb", "politie"])
    attesters = set()
    position = after["coord"]
    deadline = time.monotonic() + 20
    while attesters != {"caw", "clb", "politie"} and time.monotonic() < deadline:
        page = call(coord, "GET", "/v1/messages", 200, params={"after": position, "wait": 5})
        attesters |= {
            m["sender_id"]
            for m in page["messages"]
            if m["purpose"] == "wissingsbevestiging" and m["case_ref"] == case_ref
        }
        position = page["next_after"]
    assert attesters == {"caw", "clb", "politie"}
    # What stays readable: the deletion request itself and the attestation sent afterwards.
    kept = {"afsluiting", "wissingsbevestiging"}
    records = call(caw, "GET", "/v1/dossier", 200, params={"case_ref": case_ref})["records"]
    for record in records:
        erased = record["purpose"] not in kept
        assert (record["body"] is None) == erased, record["purpose"]
        assert (record["deleted_at"] is not None) == erased
    page = call(caw, "GET", "/v1/messages", 200, params={"after": after["caw"]})
    mine = {m["purpose"]: m for m in page["messages"] if m["case_ref"] == case_ref}
    assert set(mine) == {"screening_vraag", "uitnodiging_overleg", "verslag_besluit", "afsluiting"}
    assert mine["afsluiting"]["body"]["deletion_requested"] is True
    assert all(m["body"] is None and m["deleted_at"] for p, m in mine.items() if p not in kept)

    # The coordinator erases its own copy, the refused forms' kept ones too; a second erasure
    # finds nothing left.
    holding = [
        r
        for r in call(coord, "GET", "/v1/dossier", 200, params={"case_ref": case_ref})["records"]
        if r["body"] is not None
    ]
    failed = [
        m
        for m in call(coord, "GET", "/v1/outbox", 200, params={"state": "failed"})["messages"]
        if m["case_ref"] == case_ref
    ]
    # Two forms the hub refused are kept: the incomplete co-signatures, the missed deadline.
    assert [m["code"] for m in failed] == ["cosignature_invalid", "cosignature_invalid"]
    route = "/v1/cases/{case_ref}/erase"
    erased = call(coord, "POST", route, 200, case_ref=case_ref)
    assert erased == {"erased": len(holding) + len(failed)}
    assert call(coord, "POST", route, 200, case_ref=case_ref) == {"erased": 0}
    records = call(coord, "GET", "/v1/dossier", 200, params={"case_ref": case_ref})["records"]
    assert all(r["body"] is None for r in records)


# When the gateway stops trusting the hub, or the hub is away.
def test_a_halted_gateway_refuses_what_relies_on_the_hub(gws: RunningGateways) -> None:
    caw = gws["caw"]
    caw.gateway.ctx.halted = "test: the hub's log forked"
    try:
        status = call(caw, "GET", "/v1/status", 200)
        assert status["halted"] == "test: the hub's log forked"
        problem = send(caw, "case-tezlxgb4dqcivkpa3gqeltqyfy", "aanmelding", ["coord"], status=503)
        assert problem["code"] == "halted"
        problem = call(
            caw,
            "GET",
            "/v1/cases/{case_ref}/export",
            503,
            case_ref="case-tezlxgb4dqcivkpa3gqeltqyfy",
        )
        assert problem["code"] == "halted"
        problem = call(caw, "POST", "/v1/cases", 503, json={"members": []})
        assert problem["code"] == "halted"
        call(caw, "GET", "/v1/dossier", 200)  # local data stays readable
    finally:
        caw.gateway.ctx.halted = None


def test_api_on_a_unix_socket(gws: RunningGateways, tmp_path: Path) -> None:
    caw = gws["caw"]
    socket_path = str(tmp_path / "api.sock")

    async def over_socket() -> tuple[int, int, int, dict[str, Any]]:
        app = create_api(caw.gateway, caw.token)
        async with serving(app, unix_socket=socket_path):
            mode = stat.S_IMODE(Path(socket_path).stat().st_mode)
            connector = aiohttp.UnixConnector(path=socket_path)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get("http://localhost/v1/status") as response:
                    refused = response.status
                headers = {"Authorization": f"Bearer {caw.token}"}
                async with session.get("http://localhost/v1/status", headers=headers) as response:
                    return mode, refused, response.status, await response.json()

    mode, refused, status, answer = gws.loop.run(over_socket())
    assert mode == 0o600
    assert (refused, status, answer["participant"]) == (401, 200, "caw")
    assert not Path(socket_path).exists()


def test_hub_away(gws: RunningGateways, cell: GatewayCell) -> None:
    coord = gws["coord"]
    cell.hub.stop()
    try:
        problem = call(coord, "POST", "/v1/cases", 503, json={"members": []})
        assert problem["code"] == "hub_unavailable"
        problem = send(
            gws["caw"], "case-j6n7kzkkok3nhaamp3qfygv2my", "aanmelding", ["coord"], status=503
        )
        assert problem["code"] == "hub_unavailable"
        call(coord, "GET", "/v1/dossier", 200)
    finally:
        cell.hub.start()
    deadline = time.monotonic() + 20
    while not call(coord, "GET", "/v1/status", 200)["connected"]:
        assert time.monotonic() < deadline, "the gateway did not reconnect"
        time.sleep(0.2)
    call(coord, "POST", "/v1/cases", 201, json={"members": []})


def test_routes_and_spec_agree(gws: RunningGateways) -> None:
    app = create_api(gws["caw"].gateway, gws["caw"].token)
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (operation.method.upper(), operation.path)
        for operation in (result.ok() for result in SPEC.get_all_operations())
    }
    assert served == documented


def test_spec_names_every_error_code() -> None:
    from livcr_exchange.errors import error_codes  # noqa: PLC0415

    codes = set(SPEC.raw_schema["components"]["schemas"]["ErrorCode"]["enum"])
    assert set(error_codes()) <= codes
    assert {"unauthenticated", "not_found", "halted", "hub_unavailable", "forbidden"} <= codes


def test_spec_states_every_limit() -> None:
    from gateway import api  # noqa: PLC0415

    text = SPEC_PATH.read_text()
    for name in (
        "MAX_API_REQUEST_BYTES",
        "MAX_LONG_POLL_SECONDS",
        "MAX_PAGE",
        "DEFAULT_PAGE",
        "SEND_TIMEOUT_SECONDS",
    ):
        value = getattr(api, name)
        assert f"`{name}` = {int(value)}" in text, name
        assert value == int(value), name


def test_gateways_mint_case_references_nobody_can_guess(gws: RunningGateways) -> None:
    """The coordinator's gateway mints a new case's reference, and so does a referring gateway
    for a referral sent without one (spec §8.3); every other purpose must name its case."""
    opened = new_case(gws, ["caw"])
    assert check_case_ref(opened) == opened
    after = cursor(gws["coord"])
    referral = {"purpose": "aanmelding", "to": ["coord"], "body": body("aanmelding")}
    sent = call(gws["caw"], "POST", "/v1/messages", 201, json=referral)
    assert check_case_ref(sent["case_ref"]) == sent["case_ref"] != opened
    assert receive(gws["coord"], after, "aanmelding", sent["case_ref"])["sender_id"] == "caw"
    question = {"purpose": "screening_vraag", "to": ["caw"], "body": body("screening_vraag")}
    problem = call(gws["coord"], "POST", "/v1/messages", 400, json=question)
    assert problem["code"] == "malformed"
