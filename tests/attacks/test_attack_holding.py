"""Attacks that already held, kept holding: forged, stale and replayed request signatures;
reading another's inbox or stream; purposes and recipients outside policy; the co-signature
gate; tampered envelope headers. Each refusal leaves the store as it was (save the audit leaf
of an authenticated refusal) and delivers nothing."""

from __future__ import annotations

import base64
import json

import attack_harness
import hub_harness
import pytest
from factories import FICHE, MEETING_REF, flip
from hub_harness import HUB_BINDING, HubHarness

from livcr_exchange.constants import MAX_CLOCK_SKEW
from livcr_exchange.envelope import UnverifiedEnvelope
from livcr_exchange.request_auth import (
    RequestTarget,
    content_digest,
    signature_base,
    signature_params,
)

clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture
INBOX = "/v1/inbox"
PRESENT = ("caw", "coord", "io-politie")
FICHE_BODY = b'{"purpose":"terugkoppelingsfiche","agreed":true}'


def problem_code(body: bytes) -> str:
    return str(json.loads(body)["code"])


async def refused_unchanged(
    harness: HubHarness, status: int, code: str, *args: object, **kwargs: object
) -> None:
    before = await harness.snapshot()
    answer = await attack_harness.raw(harness, *args, **kwargs)  # type: ignore[arg-type]
    assert (answer[0], problem_code(answer[1])) == (status, code)
    await harness.assert_unchanged(before)


async def test_a_forged_signature_is_refused(harness: HubHarness) -> None:
    target = RequestTarget("GET", INBOX, "", b"")
    params = signature_params(
        harness.clock(), harness.identity("caw").key_id, bytes(16), HUB_BINDING
    )
    signature = harness.identity("clb").sign(signature_base(target, "caw", params))
    headers = {
        "Content-Digest": content_digest(b""),
        "Livcr-Participant": "caw",
        "Signature-Input": f"sig1={params}",
        "Signature": "sig1=:" + base64.b64encode(signature).decode() + ":",
    }
    await refused_unchanged(harness, 401, "bad_signature", "caw", "GET", INBOX, headers=headers)


async def test_a_stale_signature_is_refused(harness: HubHarness) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    harness.clock.advance(MAX_CLOCK_SKEW + 1)
    await refused_unchanged(
        harness, 400, "timestamp_out_of_window", "caw", "GET", INBOX, headers=headers
    )


async def test_a_replayed_signature_is_refused(harness: HubHarness) -> None:
    body = f'{{"case_ref": "{attack_harness.minted("replayed")}", "members": []}}'.encode()
    headers = harness.signed_headers("coord", "POST", "/v1/cases", body=body)
    headers["Content-Type"] = "application/json"
    first = await attack_harness.raw(harness, "coord", "POST", "/v1/cases", body, headers=headers)
    assert first[0] == 201
    await refused_unchanged(
        harness, 409, "replayed", "coord", "POST", "/v1/cases", body, headers=headers
    )


async def test_another_participants_inbox_cannot_be_read(harness: HubHarness) -> None:
    case_ref = attack_harness.minted("inbox")
    await harness.case_in(case_ref, "in_screening", ["caw"])
    await harness.client("coord").submit(harness.seal("coord", ["caw"], case_ref=case_ref))
    headers = harness.signed_headers("clb", "GET", INBOX)
    headers["Livcr-Participant"] = "caw"  # clb's key claiming caw
    await refused_unchanged(harness, 403, "unknown_sender", "clb", "GET", INBOX, headers=headers)
    assert (await harness.client("clb").inbox())["deliveries"] == []


async def test_another_participants_stream_cannot_be_opened(harness: HubHarness) -> None:
    headers = harness.signed_headers("clb", "GET", "/v1/stream")
    headers["Livcr-Participant"] = "caw"
    headers |= {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    headers["Sec-WebSocket-Key"] = base64.b64encode(bytes(16)).decode()
    await refused_unchanged(
        harness, 403, "unknown_sender", "clb", "GET", "/v1/stream", headers=headers
    )
    assert not harness.hub.push.online("caw")


@pytest.mark.parametrize(
    ("sender", "recipients", "purpose", "code"),
    [
        ("caw", ["io-politie"], FICHE, "purpose_not_allowed"),  # only the coordinator sends it
        ("caw", ["clb"], "screening_antwoord", "recipient_not_allowed"),  # goes to coord only
    ],
)
async def test_purposes_and_recipients_outside_policy_are_refused(
    harness: HubHarness, sender: str, recipients: list[str], purpose: str, code: str
) -> None:
    case_ref = attack_harness.minted("policy")
    await harness.case_in(case_ref, "in_screening", ["caw", "clb", "io-politie"])
    envelope = harness.seal(sender, recipients, purpose=purpose, case_ref=case_ref)
    before = await harness.snapshot()
    status, body = await attack_harness.raw(harness, sender, "POST", "/v1/envelopes", envelope)
    assert (status, problem_code(body)) == (403, code)
    leaf = await harness.assert_refused(
        before, actor=sender, action="submit", code=code, message_id=envelope_id(envelope)
    )
    assert leaf.code == code


async def test_a_fiche_without_every_present_members_cosignature_is_refused(
    harness: HubHarness,
) -> None:
    case_ref = attack_harness.minted("fiche")
    await harness.case_in(
        case_ref, "besproken", ["caw", "clb", "io-politie"], meeting=(MEETING_REF, PRESENT)
    )
    block = harness.cell.cosign_block(FICHE_BODY, ("coord", "io-politie"), case_ref=case_ref)
    envelope = harness.seal(
        "coord",
        ["io-politie"],
        FICHE_BODY,
        purpose=FICHE,
        case_ref=case_ref,
        cosign_block=block,
        meeting_ref=MEETING_REF,
    )
    before = await harness.snapshot()
    status, body = await attack_harness.raw(harness, "coord", "POST", "/v1/envelopes", envelope)
    assert (status, problem_code(body)) == (403, "cosignature_invalid")
    await harness.assert_refused(
        before,
        actor="coord",
        action="submit",
        code="cosignature_invalid",
        message_id=envelope_id(envelope),
    )


@pytest.mark.parametrize("offset", [8, 40, 120])
async def test_a_tampered_header_is_refused(harness: HubHarness, offset: int) -> None:
    case_ref = attack_harness.minted("tampered")
    await harness.case_in(case_ref, "in_screening", ["caw"])
    envelope = flip(harness.seal("coord", ["caw"], case_ref=case_ref), offset)
    before = await harness.snapshot()
    status, body = await attack_harness.raw(harness, "coord", "POST", "/v1/envelopes", envelope)
    assert 400 <= status < 500, status
    after = await harness.snapshot()
    assert after.without_log() == before.without_log()  # nothing delivered, nothing stored
    assert after.counts["log_size"] == before.counts["log_size"] + 1  # the refusal, audited
    assert problem_code(body)


def envelope_id(envelope: bytes) -> bytes:
    return UnverifiedEnvelope.parse(envelope).message_id
