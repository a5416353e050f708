"""Envelopes through the hub's API: submit (single and batch), inbox, signed acks, the push stream,
prekeys, and every refusal of a submission, each with its code and its audit leaf."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import aiohttp
import hub_harness
import pytest
from conftest import StoreTarget
from factories import FICHE, MEETING_REF, flip
from hub_harness import (
    LOG_KEY,
    NARROW,
    NO_MESSAGE,
    ORIGIN,
    OUTSIDER,
    REVOKED,
    Clock,
    HubHarness,
    refused,
    running_hub,
)
from structlog.testing import capture_logs

from hub.store.base import StoreError
from livcr_exchange.audit.checkpoint import open_checkpoint
from livcr_exchange.audit.leaves import (
    CaseTransition,
    DeliveryReceipt,
    DirectoryChange,
    EnvelopeAccepted,
    Refusal,
    delivery_receipt_message,
    envelope_hash,
)
from livcr_exchange.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from livcr_exchange.directory import Directory
from livcr_exchange.envelope import (
    CosignBlock,
    CosignedFacts,
    UnverifiedEnvelope,
    build_block,
    content_digest,
)
from livcr_exchange.envelope.cosign import cosign
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import Suite
from livcr_exchange.service.hub_client import HubRefused
from livcr_exchange.service.problems import STATUS_BY_CODE
from livcr_exchange.statements import PrekeyStatement, StatementType

# The fixtures `clock` and `harness` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture

CASE = "case-vju7nemyljfjnh34dsllpd4day"
FICHE_CASE = "case-p6avjggcgbt6cgtbz7fgj2esca"
PRESENT = ("caw", "coord", "io-politie")


def message_id_of(envelope: bytes) -> bytes:
    return UnverifiedEnvelope.parse(envelope).message_id


def accepted_leaf(
    harness: HubHarness, envelope: bytes, logged_at: int | None = None, salt: Any = ANY
) -> EnvelopeAccepted:
    """The leaf the hub must log for ``envelope`` (now, unless ``logged_at``), built
    independently of the hub; with any salt, unless ``salt`` (the receipt's) says which."""
    core = UnverifiedEnvelope.parse(envelope).header.core
    return EnvelopeAccepted(
        harness.clock() if logged_at is None else logged_at,
        salt,
        core.message_id,
        core.sender_id,
        core.purpose,
        core.case_ref,
        core.recipient_ids(),
        envelope_hash(envelope),
        len(envelope),
    )


def check_receipt(
    harness: HubHarness, receipt: dict[str, Any], envelope: bytes, logged_at: int | None = None
) -> None:
    """The receipt's checkpoint is signed by the log key and its proof puts the envelope's
    leaf, rebuilt here from the envelope, at the receipt's index under that checkpoint's root.
    The envelope was logged now, unless ``logged_at`` says when."""
    assert receipt["message_id"] == message_id_of(envelope).hex()
    assert receipt["logged_at"] == (harness.clock() if logged_at is None else logged_at)
    checkpoint = open_checkpoint(receipt["checkpoint"].encode(), ORIGIN, LOG_KEY.public.raw)
    assert checkpoint.origin == ORIGIN
    assert checkpoint.size == receipt["tree_size"]
    proof = [base64.b64decode(h) for h in receipt["inclusion_proof"]]
    verify_inclusion(
        leaf_hash(
            accepted_leaf(
                harness, envelope, receipt["logged_at"], bytes.fromhex(receipt["salt"])
            ).encode()
        ),
        receipt["leaf_index"],
        checkpoint.size,
        proof,
        checkpoint.root,
    )


async def submit_refused(
    harness: HubHarness, sender: str, envelope: bytes, code: str, *, audited: bool = True
) -> None:
    """Submit ``envelope`` as ``sender``; expect ``code`` and a store changed only by the audit
    leaf of an authenticated refusal (``audited``) or not at all (the request itself failed)."""
    before = await harness.snapshot()
    with capture_logs() as events:
        problem = await refused(harness.client(sender).submit(envelope))
    assert (problem.status, problem.code) == (STATUS_BY_CODE.get(code, 400), code)
    (access,) = [e for e in events if e["event"] == "request"]
    assert access["status"] == problem.status
    if not audited:
        await harness.assert_unchanged(before)
        assert access["participant"] is None
        return
    try:
        message_id = message_id_of(envelope)
    except Exception:  # noqa: BLE001  (an envelope that does not parse has no message id)
        message_id = NO_MESSAGE
    await harness.assert_refused(
        before, actor=sender, action="submit", code=code, message_id=message_id
    )
    assert access["participant"] == sender
    if message_id != NO_MESSAGE:  # the header parsed: the log line names its purpose
        assert access["purpose"] == UnverifiedEnvelope.parse(envelope).purpose
    (refusal,) = [e for e in events if e["event"] == "refusal"]
    assert (refusal["participant"], refusal["action"], refusal["code"]) == (sender, "submit", code)


async def fetched_inbox(harness: HubHarness, recipient: str) -> list[dict[str, Any]]:
    """The recipient's inbox items, each with its envelope fetched (``GET /v1/deliveries``)
    under ``envelope``, standard base64."""
    client = harness.client(recipient)
    items = (await client.inbox())["deliveries"]
    for item in items:
        item["envelope"] = base64.b64encode(await client.fetch_envelope(item["message_id"]))
    return list(items)


def receipt_for(
    harness: HubHarness, recipient: str, item: dict[str, Any]
) -> tuple[bytes, int, bytes]:
    """A delivery receipt signed by ``recipient`` for an inbox item."""
    message_id = bytes.fromhex(item["message_id"])
    digest = envelope_hash(base64.b64decode(item["envelope"]))
    received_at = harness.clock()
    message = delivery_receipt_message(message_id, digest, recipient, received_at)
    return message_id, received_at, harness.identity(recipient).sign(message)


# Submission.
async def test_submit_answers_201_with_a_receipt_whose_proof_verifies(harness: HubHarness) -> None:
    envelope = harness.seal(
        "caw", ["coord"], purpose="aanmelding", case_ref="case-oiqvz2kxvheefjm4ghhzoplqwy"
    )
    before = await harness.snapshot()
    with capture_logs() as events:
        receipt = await harness.client("caw").submit(envelope)
    (access,) = [e for e in events if e["event"] == "request"]
    assert (access["participant"], access["purpose"], access["status"]) == (
        "caw",
        "aanmelding",
        201,
    )
    check_receipt(harness, receipt, envelope)
    assert receipt["leaf_index"] == before.counts["log_size"]
    assert receipt["tree_size"] == before.counts["log_size"] + 2
    # The log: the envelope's leaf, then the case the referral opened under its reference.
    assert await harness.leaves_since(before.counts["log_size"]) == [
        accepted_leaf(harness, envelope),
        CaseTransition(
            harness.clock(),
            ANY,
            "case-oiqvz2kxvheefjm4ghhzoplqwy",
            "caw",
            "none",
            "signaal_ontvangen",
            "none",
        ),
    ]
    after = await harness.snapshot()
    assert after.pending["coord"] == (message_id_of(envelope).hex(),)
    assert {k: after.counts[k] - before.counts[k] for k in after.counts} == {
        "envelopes": 1,
        "deliveries_pending": 1,
        "log_size": 2,
        "statements": 0,
        "cases": 1,
    }
    case = await harness.client("coord").case("case-oiqvz2kxvheefjm4ghhzoplqwy")
    assert case["state"] == "signaal_ontvangen"
    assert (case["referrer"], case["members"]) == ("caw", ["caw", "coord"])


async def test_batch_answers_each_envelope_with_a_receipt_or_a_problem(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "io-politie"])
    to_caw = harness.seal("coord", ["caw"], case_ref=CASE)
    to_clb = harness.seal("coord", ["clb"], case_ref=CASE)  # clb is not on the case
    to_police = harness.seal("coord", ["io-politie"], case_ref=CASE)
    other_caw = harness.seal_again(to_caw)  # other bytes under to_caw's message id
    before = await harness.snapshot()
    results = await harness.client("coord").submit_batch(
        [to_caw, to_clb, to_police, other_caw, to_caw]
    )
    assert [r.get("code") for r in results] == [
        None,
        "recipient_not_allowed",
        None,
        "replayed",
        None,
    ]
    assert [r.get("accepted_before") for r in results] == [False, None, False, None, True]
    check_receipt(harness, results[0]["receipt"], to_caw)
    check_receipt(harness, results[2]["receipt"], to_police)
    # The same bytes again: their original receipt, proven against the tree as it is now.
    check_receipt(harness, results[4]["receipt"], to_caw)
    assert results[4]["receipt"]["leaf_index"] == results[0]["receipt"]["leaf_index"]
    assert results[4]["receipt"]["tree_size"] == before.counts["log_size"] + 4
    now = harness.clock()
    assert await harness.leaves_since(before.counts["log_size"]) == [
        accepted_leaf(harness, to_caw),
        Refusal(now, ANY, "coord", "submit", "recipient_not_allowed", message_id_of(to_clb)),
        accepted_leaf(harness, to_police),
        Refusal(now, ANY, "coord", "submit", "replayed", message_id_of(to_caw)),
    ]
    after = await harness.snapshot()
    assert after.pending["caw"] == (message_id_of(to_caw).hex(),)
    assert after.pending["io-politie"] == (message_id_of(to_police).hex(),)
    assert after.pending["clb"] == ()


async def test_batch_with_an_item_that_is_not_base64_is_refused_whole(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    good = base64.b64encode(harness.seal("coord", ["caw"], case_ref=CASE)).decode()
    before = await harness.snapshot()
    body = b'{"envelopes": ["' + good.encode() + b'", "not base64!"]}'
    headers = harness.signed_headers("coord", "POST", "/v1/envelopes/batch", body=body)
    async with harness.session.post(
        harness.url + "/v1/envelopes/batch", data=body, headers=headers
    ) as response:
        problem = await response.json(content_type=None)
    assert (response.status, problem["code"]) == (400, "malformed")
    # Nothing of the batch was accepted: the good envelope can be sent again.
    await harness.assert_refused(before, actor="coord", action="submit_batch", code="malformed")


# Inbox, delivery receipts, paging.
async def test_inbox_ack_removes_the_envelope_once_every_recipient_acked(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "io-politie"])
    envelope = harness.seal("coord", ["caw", "io-politie"], case_ref=CASE)
    receipt = await harness.client("coord").submit(envelope)
    message_id = message_id_of(envelope)
    harness.clock.advance(60)
    items: dict[str, dict[str, Any]] = {}
    for pid in ("caw", "io-politie"):
        page = await harness.client(pid).inbox()
        (notice,) = page["deliveries"]
        assert page["next_after"] == notice["seq"]
        assert notice["size"] == len(envelope)
        (item,) = await fetched_inbox(harness, pid)
        assert base64.b64decode(item["envelope"]) == envelope
        assert (item["message_id"], item["leaf_index"]) == (message_id.hex(), receipt["leaf_index"])
        assert item["logged_at"] == receipt["logged_at"]
        opened = harness.cell.open_as(
            pid,
            envelope,
            now=harness.clock(),
            judged_at=item["logged_at"],
            directory=harness.hub.directory,
        )
        assert opened.body == b'{"question":"known?"}'
        items[pid] = item

    before = await harness.snapshot()
    ack = await harness.client("caw").ack([receipt_for(harness, "caw", items["caw"])])
    assert ack == {
        "acknowledged": 1,
        "leaf_indexes": [before.counts["log_size"]],
        "unknown": [],
    }
    (leaf,) = await harness.leaves_since(before.counts["log_size"])
    assert isinstance(leaf, DeliveryReceipt)
    assert (leaf.message_id, leaf.recipient_id, leaf.logged_at) == (
        message_id,
        "caw",
        harness.clock(),
    )
    assert leaf.envelope_hash == envelope_hash(envelope)
    # Anyone holding the log can check that caw itself acknowledged this exact envelope.
    harness.identity("caw").public.verify(
        delivery_receipt_message(message_id, leaf.envelope_hash, "caw", leaf.received_at),
        leaf.signature,
    )
    middle = await harness.snapshot()
    assert middle.counts["envelopes"] == before.counts["envelopes"]  # io-politie has not acked
    assert middle.pending["caw"] == ()
    assert middle.pending["io-politie"] == (message_id.hex(),)

    await harness.client("io-politie").ack(
        [receipt_for(harness, "io-politie", items["io-politie"])]
    )
    after = await harness.snapshot()
    assert after.counts["envelopes"] == before.counts["envelopes"] - 1
    assert after.counts["deliveries_pending"] == before.counts["deliveries_pending"] - 2
    # Acking again, or acking what was never yours, changes nothing and says so.
    again = await harness.client("caw").ack([receipt_for(harness, "caw", items["caw"])])
    assert again == {"acknowledged": 0, "leaf_indexes": [], "unknown": [message_id.hex()]}
    await harness.assert_unchanged(after)
    # The hub still remembers the message id: other bytes under it are a replay.
    await submit_refused(harness, "coord", harness.seal_again(envelope), "replayed")


async def test_ack_for_another_recipients_delivery_is_unknown(harness: HubHarness) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "io-politie"])
    envelope = harness.seal("coord", ["io-politie"], case_ref=CASE)
    await harness.client("coord").submit(envelope)
    (item,) = await fetched_inbox(harness, "io-politie")
    before = await harness.snapshot()
    answer = await harness.client("caw").ack([receipt_for(harness, "caw", item)])
    assert answer["unknown"] == [item["message_id"]]
    await harness.assert_unchanged(before)


@pytest.mark.parametrize("defect", ["other_signer", "other_time", "short"])
async def test_ack_with_a_receipt_the_recipient_did_not_sign_is_refused(
    harness: HubHarness, defect: str
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    await harness.client("coord").submit(harness.seal("coord", ["caw"], case_ref=CASE))
    (item,) = await fetched_inbox(harness, "caw")
    message_id, received_at, signature = receipt_for(harness, "caw", item)
    if defect == "other_signer":
        _, _, signature = receipt_for(harness, "clb", item)
    elif defect == "other_time":
        received_at += 1
    else:
        signature = signature[:32]
    before = await harness.snapshot()
    problem = await refused(harness.client("caw").ack([(message_id, received_at, signature)]))
    assert (problem.status, problem.code) == (401, "bad_signature")
    await harness.assert_refused(before, actor="caw", action="ack", code="bad_signature")


async def test_inbox_pages_with_after_and_limit(harness: HubHarness) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    sent = [harness.seal("coord", ["caw"], case_ref=CASE) for _ in range(3)]
    for envelope in sent:
        await harness.client("coord").submit(envelope)
    caw = harness.client("caw")
    first = await caw.inbox(limit=2)
    second = await caw.inbox(after=first["next_after"], limit=2)
    last = await caw.inbox(after=second["next_after"])
    pages = [first["deliveries"], second["deliveries"], last["deliveries"]]
    assert [len(p) for p in pages] == [2, 1, 0]
    assert [e["message_id"] for e in pages[0] + pages[1]] == [message_id_of(e).hex() for e in sent]
    assert last["next_after"] == second["next_after"]
    for query in ({"limit": 0}, {"limit": 101}, {"after": -1}, {"after": "x"}):
        before = await harness.snapshot()
        problem = await refused(caw.call("GET", "/v1/inbox", query=query))
        assert problem.code == "malformed"
        await harness.assert_refused(before, actor="caw", action="inbox", code="malformed")


# Push.
async def test_stream_pushes_pending_then_live_envelopes(harness: HubHarness) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "io-politie"])
    coord = harness.client("coord")
    waiting = harness.seal("coord", ["caw"], case_ref=CASE)
    await coord.submit(waiting)
    socket = await harness.client("caw").stream()
    try:
        first = await socket.receive_json(timeout=5)
        assert (first["type"], first["message_id"]) == ("delivery", message_id_of(waiting).hex())
        assert first["size"] == len(waiting)
        assert "envelope" not in first  # a notice: the bytes are fetched
        assert await socket.receive_json(timeout=5) == {"type": "caught_up"}
        live = harness.seal("coord", ["caw", "io-politie"], case_ref=CASE)
        receipt = await coord.submit(live)
        pushed = await socket.receive_json(timeout=5)
        assert (pushed["type"], pushed["message_id"]) == ("delivery", receipt["message_id"])
        assert pushed["leaf_index"] == receipt["leaf_index"]
        assert pushed["size"] == len(live)
        assert await harness.client("caw").fetch_envelope(pushed["message_id"]) == live
        # Push is not delivery: the envelope stays queued until caw acks it.
        assert (await harness.snapshot()).pending["caw"] == (
            message_id_of(waiting).hex(),
            message_id_of(live).hex(),
        )
    finally:
        await socket.close()
    for _ in range(100):
        if not harness.hub.push.sockets.get("caw"):
            break
        await asyncio.sleep(0.01)
    assert not harness.hub.push.sockets.get("caw")


async def test_stream_refuses_an_unsigned_upgrade(harness: HubHarness) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await harness.session.ws_connect(harness.url.replace("http", "ws", 1) + "/v1/stream")
    assert caught.value.status == 400


async def test_shutdown_closes_open_streams_promptly(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> None:
    async with running_hub(tmp_path, clock, target=store_target) as harness:
        socket = await harness.client("caw").stream()
        assert await socket.receive_json(timeout=5) == {"type": "caught_up"}
        started = time.monotonic()
        await harness.server.close()
        assert time.monotonic() - started < 5
        message = await socket.receive(timeout=5)
        assert message.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
        await socket.close()


# Prekeys.
async def test_prekeys_upload_and_fetch(harness: HubHarness) -> None:
    statements = [harness.people["caw"].signed_prekeys[suite] for suite in Suite]
    before = await harness.snapshot()
    await harness.client("caw").put_prekeys(statements)
    assert await harness.leaves_since(before.counts["log_size"]) == [
        DirectoryChange(
            harness.clock(),
            ANY,
            StatementType.PREKEY,
            "caw",
            labelled_hash(b"livcr-exchange/v2 statement\x00", s),
        )
        for s in statements
    ]
    found = await harness.client("coord").prekeys(["caw", "clb"])
    assert sorted(found["caw"]) == sorted(statements)
    assert found["clb"] == []
    for signed in found["caw"]:  # a gateway checks them against caw's key, not the hub's word
        assert PrekeyStatement.open(signed, harness.identity("caw").public).participant_id == "caw"
    # Uploading a statement again stores nothing new.
    again = await harness.snapshot()
    await harness.client("caw").put_prekeys(statements[:1])
    assert (await harness.snapshot()).prekeys == again.prekeys


async def test_prekeys_outside_their_window_are_not_served(harness: HubHarness) -> None:
    await harness.client("caw").put_prekeys([harness.people["caw"].signed_prekeys[Suite.XWING]])
    harness.clock.advance(7 * 86_400)
    assert (await harness.client("coord").prekeys(["caw"]))["caw"] == []


@pytest.mark.parametrize("defect", ["signed_by_another", "names_another"])
async def test_prekey_upload_refusals(harness: HubHarness, defect: str) -> None:
    if defect == "signed_by_another":
        statement, code = harness.people["clb"].signed_prekeys[Suite.XWING], "bad_signature"
    else:
        mine = harness.people["caw"].prekey_statements[Suite.XWING]
        statement = replace(mine, participant_id="clb").sign(harness.identity("caw"))
        code = "malformed"
    before = await harness.snapshot()
    problem = await refused(harness.client("caw").put_prekeys([statement]))
    assert problem.code == code
    await harness.assert_refused(before, actor="caw", action="put_prekeys", code=code)


@pytest.mark.parametrize("ids", ["", ",", ",".join(f"p{i}" for i in range(65))])
async def test_prekey_fetch_needs_one_to_64_ids(harness: HubHarness, ids: str) -> None:
    before = await harness.snapshot()
    problem = await refused(harness.client("coord").call("GET", "/v1/prekeys", query={"ids": ids}))
    assert problem.code == "malformed"
    await harness.assert_refused(before, actor="coord", action="get_prekeys", code="malformed")


# Refusals of a submission: who may send.
async def test_sender_not_enrolled_is_refused_before_anything_is_written(
    harness: HubHarness,
) -> None:
    envelope = harness.seal(
        OUTSIDER, ["coord"], purpose="aanmelding", case_ref="case-f2ly4dcnioxdlzpnrdsgwu6a4a"
    )
    await submit_refused(harness, OUTSIDER, envelope, "unknown_sender", audited=False)


async def test_revoked_sender_is_refused_before_anything_is_written(harness: HubHarness) -> None:
    envelope = harness.seal(
        REVOKED, ["coord"], purpose="aanmelding", case_ref="case-f2ly4dcnioxdlzpnrdsgwu6a4a"
    )
    await submit_refused(harness, REVOKED, envelope, "key_revoked", audited=False)


async def test_envelope_of_another_sender_is_refused(harness: HubHarness) -> None:
    envelope = harness.seal(
        "clb", ["coord"], purpose="aanmelding", case_ref="case-f2ly4dcnioxdlzpnrdsgwu6a4a"
    )
    await submit_refused(harness, "caw", envelope, "unknown_sender")


async def test_sender_whose_entry_lacks_the_purpose_is_refused(harness: HubHarness) -> None:
    envelope = harness.seal(
        NARROW, ["coord"], purpose="aanmelding", case_ref="case-f2ly4dcnioxdlzpnrdsgwu6a4a"
    )
    await submit_refused(harness, NARROW, envelope, "purpose_not_allowed")


async def test_sender_whose_role_may_not_send_the_purpose_is_refused(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "clb"])
    envelope = harness.seal("caw", ["clb"], case_ref=CASE)  # screening_vraag: coordinator only
    await submit_refused(harness, "caw", envelope, "purpose_not_allowed")


# Refusals: to whom.
@pytest.mark.parametrize("recipient", [OUTSIDER, REVOKED, "clb"])
async def test_recipient_not_enrolled_revoked_or_not_on_the_case_is_refused(
    harness: HubHarness, recipient: str
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", OUTSIDER, REVOKED])
    envelope = harness.seal("coord", ["caw", recipient], case_ref=CASE)
    await submit_refused(harness, "coord", envelope, "recipient_not_allowed")


async def test_recipient_whose_role_may_not_receive_the_purpose_is_refused(
    harness: HubHarness,
) -> None:
    envelope = harness.seal(
        "caw", ["clb"], purpose="aanmelding", case_ref="case-f2ly4dcnioxdlzpnrdsgwu6a4a"
    )
    await submit_refused(harness, "caw", envelope, "recipient_not_allowed")


async def test_removed_member_receives_nothing_afterwards(harness: HubHarness) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "clb"])
    await harness.client("coord").change_members(CASE, remove=["clb"])
    envelope = harness.seal("coord", ["clb"], case_ref=CASE)
    await submit_refused(harness, "coord", envelope, "recipient_not_allowed")


# Refusals: when.
@pytest.mark.parametrize("known", [True, False])
async def test_case_state_that_forbids_the_purpose_is_refused(
    harness: HubHarness, known: bool
) -> None:
    if known:
        await harness.client("coord").open_case(CASE, ["caw"])  # still signaal_ontvangen
    envelope = harness.seal("coord", ["caw"], case_ref=CASE)  # screening_vraag needs in_screening
    await submit_refused(harness, "coord", envelope, "case_state_forbids")


@pytest.mark.parametrize(
    ("offset", "ttl", "code"),
    [
        (-200, 100, "expired"),
        (-301, 7 * 86_400, "timestamp_out_of_window"),
        (301, 7 * 86_400, "timestamp_out_of_window"),
    ],
)
async def test_expired_or_stale_envelope_is_refused(
    harness: HubHarness, offset: int, ttl: int, code: str
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal(
        "coord", ["caw"], case_ref=CASE, timestamp=harness.clock() + offset, ttl=ttl
    )
    await submit_refused(harness, "coord", envelope, code)


async def test_replayed_envelope_is_refused(harness: HubHarness) -> None:
    """Another envelope under a (sender, message id) the hub accepted: refused, even when it is
    as fresh and valid as the first (the sender sealed the message again, spec §9.3)."""
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE)
    await harness.client("coord").submit(envelope)
    harness.clock.advance(10)
    again = harness.seal_again(envelope)
    assert message_id_of(again) == message_id_of(envelope)
    assert again != envelope
    await submit_refused(harness, "coord", again, "replayed")


# Resubmission: the same bytes again get their original receipt (spec §9.3).
async def submit_answer(
    harness: HubHarness, sender: str, envelope: bytes
) -> tuple[int, dict[str, Any]]:
    """POST /v1/envelopes as ``sender``; the status (200 and 201 both succeed) and the body."""
    headers = harness.signed_headers(sender, "POST", "/v1/envelopes", body=envelope)
    headers["Content-Type"] = "application/octet-stream"
    async with harness.session.post(
        harness.url + "/v1/envelopes", data=envelope, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


async def resubmitted(
    harness: HubHarness, envelope: bytes, first: dict[str, Any]
) -> dict[str, Any]:
    """Submit ``envelope`` (accepted before with receipt ``first``) again as its sender: 200,
    the original leaf and time, a proof against the current tree, and nothing written."""
    sender = UnverifiedEnvelope.parse(envelope).sender_id
    before = await harness.snapshot()
    status, receipt = await submit_answer(harness, sender, envelope)
    assert status == 200, receipt
    assert (receipt["leaf_index"], receipt["logged_at"]) == (
        first["leaf_index"],
        first["logged_at"],
    )
    assert receipt["tree_size"] == before.counts["log_size"]
    check_receipt(harness, receipt, envelope, first["logged_at"])
    after = await harness.snapshot()
    assert after == before  # not a leaf, not a queue entry, not a row more
    return receipt


async def test_the_same_bytes_again_answer_200_with_the_original_receipt(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "io-politie"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE)
    first = await harness.client("coord").submit(envelope)
    harness.clock.advance(30)
    await harness.client("coord").submit(harness.seal("coord", ["io-politie"], case_ref=CASE))
    with capture_logs() as events:
        again = await resubmitted(harness, envelope, first)
    assert again["tree_size"] == first["tree_size"] + 1
    assert not [e for e in events if e["event"] == "refusal"]
    # Still one delivery for caw: the message arrives once.
    assert (await harness.snapshot()).pending["caw"] == (message_id_of(envelope).hex(),)


@pytest.mark.parametrize(
    ("wait", "ttl"),
    [(400, 7 * 86_400), (250, 200)],  # gone stale (beyond MAX_CLOCK_SKEW); expired
    ids=["stale", "expired"],
)
async def test_the_same_bytes_again_get_their_receipt_while_the_pair_is_kept(
    harness: HubHarness, wait: int, ttl: int
) -> None:
    """Whatever the checks would now say of the envelope; until the hub forgets the pair."""
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE, ttl=ttl)
    first = await harness.client("coord").submit(envelope)
    harness.clock.advance(wait)
    await resubmitted(harness, envelope, first)
    if wait > ttl:  # the expiry round forgets the pair: the envelope is refused as it is
        await harness.store.delete_expired(harness.clock(), 100)
        await submit_refused(harness, "coord", envelope, "expired")


async def test_the_same_bytes_after_delivery_and_ack_still_get_their_receipt(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE)
    first = await harness.client("coord").submit(envelope)
    harness.clock.advance(60)
    (item,) = await fetched_inbox(harness, "caw")
    await harness.client("caw").ack([receipt_for(harness, "caw", item)])
    assert (await harness.snapshot()).counts["envelopes"] == 0  # the hub holds it no more
    again = await resubmitted(harness, envelope, first)
    assert again["tree_size"] == first["tree_size"] + 1  # the delivery receipt's leaf
    assert (await harness.snapshot()).pending["caw"] == ()  # not queued a second time


async def test_the_same_bytes_after_retention_deleted_their_leaf_are_replayed(
    harness: HubHarness,
) -> None:
    """No receipt can be built without the leaf's data: the answer is the replay it is."""
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE)
    await harness.client("coord").submit(envelope)
    await harness.store.purge_case(CASE, 1000)
    await submit_refused(harness, "coord", envelope, "replayed")


async def test_the_same_bytes_from_another_participant_get_no_receipt(
    harness: HubHarness,
) -> None:
    """The receipt goes to the envelope's sender only: for anyone else it is the refusal."""
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE)
    await harness.client("coord").submit(envelope)
    await submit_refused(harness, "caw", envelope, "unknown_sender")


async def test_the_same_bytes_twice_at_once_are_accepted_once(harness: HubHarness) -> None:
    """Two submissions racing (a retry while the first is still in flight): one commits, the
    other gets the same receipt."""
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE)
    before = await harness.snapshot()
    answers = await asyncio.gather(*(submit_answer(harness, "coord", envelope) for _ in range(2)))
    assert sorted(status for status, _ in answers) == [200, 201]
    assert len({receipt["leaf_index"] for _, receipt in answers}) == 1
    for _, receipt in answers:
        check_receipt(harness, receipt, envelope)
    after = await harness.snapshot()
    assert after.counts["log_size"] == before.counts["log_size"] + 1
    assert after.pending["caw"] == (message_id_of(envelope).hex(),)


# Refusals: what.
@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda _: b"\x00\x00\x00\x05LVCR", "malformed"),  # truncated
        (lambda _: b"not an envelope", "oversized"),  # "not " as a header length
        (lambda e: e[:-1], "malformed"),
        (lambda e: flip(e, len(e) - 100), "bad_signature"),  # a byte of the sealed body
        (lambda e: flip(e, len(e) - 1), "bad_signature"),  # the signature itself
    ],
)
async def test_malformed_or_tampered_envelope_is_refused(
    harness: HubHarness, mangle: Any, code: str
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = mangle(harness.seal("coord", ["caw"], case_ref=CASE))
    await submit_refused(harness, "coord", envelope, code)


# The terugkoppelingsfiche and its co-signatures (spec §7.4).
async def fiche_case(harness: HubHarness) -> None:
    await harness.case_in(
        FICHE_CASE, "besproken", ["caw", "clb", "io-politie"], meeting=(MEETING_REF, PRESENT)
    )


def fiche(harness: HubHarness, block: CosignBlock, body: bytes) -> bytes:
    return harness.seal(
        "coord",
        ["io-politie"],
        body,
        purpose=FICHE,
        case_ref=FICHE_CASE,
        cosign_block=block,
        meeting_ref=MEETING_REF,
    )


def cosigned(harness: HubHarness, body: bytes, signers: tuple[str, ...]) -> CosignBlock:
    return harness.cell.cosign_block(body, signers, case_ref=FICHE_CASE)


FICHE_BODY = b'{"purpose":"terugkoppelingsfiche","agreed":true}'


async def test_fiche_cosigned_by_everyone_present_is_accepted(harness: HubHarness) -> None:
    await fiche_case(harness)
    envelope = fiche(harness, cosigned(harness, FICHE_BODY, PRESENT), FICHE_BODY)
    receipt = await harness.client("coord").submit(envelope)
    check_receipt(harness, receipt, envelope)


@pytest.mark.parametrize(
    "signers",
    [("coord", "io-politie"), ("caw", "io-politie"), (*PRESENT, "clb")],
    ids=["member_missing", "sender_missing", "absent_member_signed"],
)
async def test_fiche_without_exactly_the_present_members_cosignatures_is_refused(
    harness: HubHarness, signers: tuple[str, ...]
) -> None:
    await fiche_case(harness)
    envelope = fiche(harness, cosigned(harness, FICHE_BODY, signers), FICHE_BODY)
    await submit_refused(harness, "coord", envelope, "cosignature_invalid")


async def test_fiche_with_a_forged_cosignature_is_refused(harness: HubHarness) -> None:
    await fiche_case(harness)
    block = cosigned(harness, FICHE_BODY, PRESENT)
    digest = content_digest(FICHE_BODY)
    facts = CosignedFacts(
        harness.cell.cell_id, FICHE_CASE, MEETING_REF, FICHE, ("io-politie",), block.deadline
    )
    forged = cosign(harness.identity("clb"), "caw", facts, digest)
    forged = replace(forged, signer_key_id=harness.identity("caw").key_id)
    signatures = [s for s in block.signatures if s.signer_id != "caw"] + [forged]
    envelope = fiche(harness, build_block(digest, block.deadline, signatures), FICHE_BODY)
    await submit_refused(harness, "coord", envelope, "cosignature_invalid")


async def test_fiche_cosigned_over_other_content_is_refused(harness: HubHarness) -> None:
    await fiche_case(harness)
    other = cosigned(harness, b'{"purpose":"terugkoppelingsfiche","agreed":false}', PRESENT)
    block = CosignBlock(content_digest(FICHE_BODY), other.deadline, other.signatures)
    envelope = fiche(harness, block, FICHE_BODY)
    await submit_refused(harness, "coord", envelope, "cosignature_invalid")


async def test_fiche_on_a_case_whose_meeting_is_not_recorded_is_refused(
    harness: HubHarness,
) -> None:
    await harness.case_in(FICHE_CASE, "besproken", ["caw", "io-politie"])
    envelope = fiche(harness, cosigned(harness, FICHE_BODY, PRESENT), FICHE_BODY)
    await submit_refused(harness, "coord", envelope, "cosignature_invalid")


async def test_the_same_receipt_twice_in_one_ack_is_recorded_once(harness: HubHarness) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    await harness.client("coord").submit(harness.seal("coord", ["caw"], case_ref=CASE))
    (item,) = await fetched_inbox(harness, "caw")
    receipt = receipt_for(harness, "caw", item)
    before = await harness.snapshot()
    answer = await harness.client("caw").ack([receipt, receipt])
    assert answer == {"acknowledged": 1, "leaf_indexes": [before.counts["log_size"]], "unknown": []}
    assert len(await harness.leaves_since(before.counts["log_size"])) == 1


async def test_a_failing_store_answers_503(
    harness: HubHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])

    async def broken(*_: object) -> Any:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(harness.store, "commit", broken)
    monkeypatch.setattr(harness.store, "pending", broken)
    with capture_logs() as events:
        problem = await refused(
            harness.client("coord").submit(harness.seal("coord", ["caw"], case_ref=CASE))
        )
        assert (problem.status, problem.code) == (503, "store_unavailable")
        problem = await refused(harness.client("caw").inbox())
        assert (problem.status, problem.code) == (503, "store_unavailable")
    assert [e["status"] for e in events if e["event"] == "request"] == [503, 503]


@pytest.mark.parametrize(
    ("action", "method", "path", "body"),
    [
        ("submit_batch", "POST", "/v1/envelopes/batch", b'{"envelopes": []}'),
        ("submit_batch", "POST", "/v1/envelopes/batch", b'{"envelopes": "AAAA"}'),
        ("submit_batch", "POST", "/v1/envelopes/batch", b"\xff\xfe"),
        ("ack", "POST", "/v1/inbox/ack", b'{"receipts": [{"message_id": "00"}]}'),
        ("ack", "POST", "/v1/inbox/ack", b'{"receipts": []}'),
        ("ack", "POST", "/v1/inbox/ack", b"{"),
        (  # received_at beyond the u64 the receipt signs
            "ack",
            "POST",
            "/v1/inbox/ack",
            b'{"receipts": [{"message_id": "%s", "received_at": 18446744073709551616,'
            b' "signature": "AAAA"}]}' % (b"0" * 32),
        ),
        (  # a message id with a final newline
            "ack",
            "POST",
            "/v1/inbox/ack",
            b'{"receipts": [{"message_id": "%s\\n", "received_at": 1, "signature": "AAAA"}]}'
            % (b"0" * 32),
        ),
        ("put_prekeys", "PUT", "/v1/prekeys", b'{"statements": ["%%%"]}'),
        ("put_prekeys", "PUT", "/v1/prekeys", b'{"statements": ["AAAA"], "extra": 1}'),
        ("put_prekeys", "PUT", "/v1/prekeys", b"null"),
    ],
)
async def test_malformed_json_bodies_are_refused(
    harness: HubHarness, action: str, method: str, path: str, body: bytes
) -> None:
    before = await harness.snapshot()
    problem = await refused(harness.client("caw").call(method, path, body=body))
    assert (problem.status, problem.code) == (400, "malformed")
    await harness.assert_refused(before, actor="caw", action=action, code="malformed")


# The directory.
async def test_directory_serves_the_root_signed_statements(harness: HubHarness) -> None:
    listing = await harness.client("caw").directory()
    assert listing["cell_id"] == harness.cell.cell_id
    assert listing["root_key"] == harness.cell.root.public.to_text()
    # A gateway verifies every statement against the root key it was enrolled with.
    directory = Directory.from_signed(
        harness.cell.cell_id,
        harness.cell.root.public,
        [base64.b64decode(e) for e in listing["entries"]],
        [base64.b64decode(r) for r in listing["revocations"]],
    )
    usable = directory.participants(harness.clock())
    assert sorted(usable) == ["caw", "clb", "coord", "io-politie", NARROW]
    assert usable[NARROW].allowed_purposes == {"screening_antwoord"}
    assert [r.participant_id for r in directory.revocations] == [REVOKED]


# Concurrency: the group commit and the case lock.
async def test_concurrent_submissions_each_get_a_receipt_of_one_log(harness: HubHarness) -> None:
    await harness.case_in(CASE, "in_screening", ["caw", "io-politie"])
    envelopes = [harness.seal("coord", ["caw", "io-politie"], case_ref=CASE) for _ in range(12)]
    coord = harness.client("coord")
    receipts = await asyncio.gather(*(coord.submit(e) for e in envelopes))
    for receipt, envelope in zip(receipts, envelopes, strict=True):
        check_receipt(harness, receipt, envelope)
    assert len({r["leaf_index"] for r in receipts}) == len(envelopes)
    # Every receipt's checkpoint is a prefix of the largest one: one log, no fork.
    largest = max(receipts, key=lambda r: r["tree_size"])
    newest = open_checkpoint(largest["checkpoint"].encode(), ORIGIN, LOG_KEY.public.raw)
    client = harness.client("caw")
    for receipt in receipts:
        older = open_checkpoint(receipt["checkpoint"].encode(), ORIGIN, LOG_KEY.public.raw)
        if older.size < newest.size:
            proof = await client.consistency(older.size, newest.size)
            verify_consistency(older.size, newest.size, older.root, newest.root, proof)


async def test_concurrent_referrals_under_one_new_reference_open_one_case(
    harness: HubHarness,
) -> None:

    first = harness.seal(
        "caw", ["coord"], purpose="aanmelding", case_ref="case-oy4262q77szkiekocj3nqfv7uq"
    )
    second = harness.seal(
        "clb", ["coord"], purpose="aanmelding", case_ref="case-oy4262q77szkiekocj3nqfv7uq"
    )
    outcomes = await asyncio.gather(
        harness.client("caw").submit(first),
        harness.client("clb").submit(second),
        return_exceptions=True,
    )
    # The first to commit opens the case and is its referrer; the other is not the referrer
    # of a case that now exists, so it may not add to it.
    assert isinstance(outcomes[0], dict)
    assert isinstance(outcomes[1], HubRefused)
    assert outcomes[1].code == "purpose_not_allowed"
    case = await harness.store.case("case-oy4262q77szkiekocj3nqfv7uq")
    assert case is not None
    assert (case.referrer, case.members) == ("caw", {"caw", "coord"})
    opened = [
        leaf
        for leaf in await harness.leaves_since(0)
        if isinstance(leaf, CaseTransition) and leaf.case_ref == "case-oy4262q77szkiekocj3nqfv7uq"
    ]
    assert len(opened) == 1
