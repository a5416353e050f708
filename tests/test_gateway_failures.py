"""The gateway's failures outside a crash: a clock step, a poison envelope, a hub that names an
envelope falsely, and a hub whose answer breaks its contract. Nothing acknowledged is lost.

A real hub process and real gateways (caw, whose clock the tests move, and coord); the tests
watch the gateways through their local API and their own SQLite files.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from factories import case_ref
from gateway_harness import PASSPHRASE, GatewayCell, RunningGateway, RunningGateways
from waiting import wait_until

from gateway.spool import KEPT_IN_STORE_BYTES
from livcr_exchange.document_examples import pdf
from livcr_exchange.envelope import MessageSpec, draw_parts, seal
from livcr_exchange.envelope.incoming import IncomingEnvelope
from livcr_exchange.envelope.open import UnverifiedEnvelope
from livcr_exchange.envelope.seal import seal_from_parts_stream
from livcr_exchange.hub_answers import DeliveryItem, ReceiptAnswer
from livcr_exchange.keyfile import unlock
from livcr_exchange.prekey_choice import current_prekey
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import encode_body
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubAnswerInvalid, ReceiptAnswered, decode_answer

DAY = 86_400
MIB = 1024 * 1024
ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER}
REFERRAL = msgspec.json.decode(encode_body(example_body("aanmelding")))
# Deeper than any JSON decoder of the gateway follows (msgspec stops at 1,000 levels), and
# before the purpose tag, so that the decoder walks through it looking for the tag.
POISON_BODY = b'{"x":' + b"[" * 1200 + b"]" * 1200 + b',"purpose":"aanmelding"}'


@dataclass
class Clock:
    """The system clock, moved by ``offset`` seconds (caw's own clock in these tests)."""

    offset: int = 0

    def __call__(self) -> int:
        return int(time.time()) + self.offset


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayCell]:
    cell = GatewayCell.create(tmp_path_factory.mktemp("gateway-failures"), ROLES, enrolled_ago=DAY)
    for name in ROLES:  # retries come back within seconds, so that the tests end soon
        path = cell.configs[name]
        path.write_text(
            path.read_text().replace("[gateway]\n", "[gateway]\nretry_max_seconds = 2.0\n", 1)
        )
    try:
        yield cell
    finally:
        cell.hub.stop()


@pytest.fixture(scope="module")
def caw_clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def gws(cell: GatewayCell, caw_clock: Clock) -> Iterator[RunningGateways]:
    running = RunningGateways(cell, list(ROLES), clocks={"caw": caw_clock})
    try:
        yield running
    finally:
        running.close()


def status_of(gw: RunningGateway) -> dict[str, Any]:
    response = gw.request("GET", "/v1/status")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 30) -> None:
    wait_until(condition, what, timeout)


def send(gw: RunningGateway, case_ref: str, *, wait: bool = True, **more: Any) -> dict[str, Any]:
    request = {"case_ref": case_ref, "purpose": "aanmelding", "to": ["coord"], "body": REFERRAL}
    response = gw.request("POST", "/v1/messages", json={**request, "wait": wait, **more})
    assert response.status_code in {201, 202}, response.text
    answer: dict[str, Any] = response.json()
    return answer


def received_ids(gw: RunningGateway) -> set[str]:
    response = gw.request("GET", "/v1/dossier")
    return {r["message_id"] for r in response.json()["records"] if r["direction"] == "received"}


def outbox_rows(gw: RunningGateway, ids: list[str]) -> list[tuple[str, str | None]]:
    """(state, last error) of these messages, read from the gateway's own SQLite file."""
    config = gw.gateway.config
    database = config.path(config.gateway.database)
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return [
            connection.execute(
                "SELECT state, last_error FROM outbox WHERE message_id = ?", (bytes.fromhex(m),)
            ).fetchone()
            for m in ids
        ]


# 1. A clock step.
def test_a_clock_step_delays_queued_messages_and_loses_none(
    cell: GatewayCell, gws: RunningGateways, caw_clock: Clock
) -> None:
    """Five messages queued while the hub is away; caw's clock then jumps 400 s ahead, so the
    hub refuses every request it signs (``timestamp_out_of_window``). The refusal is for time,
    not for the messages: once the clock is corrected, all five are delivered."""
    caw, coord = gws["caw"], gws["coord"]
    cell.hub.stop()
    wait_for("caw sees the hub gone", lambda: not status_of(caw)["connected"])
    try:
        ids = [send(caw, case_ref(f"clock-{i}"), wait=False)["message_id"] for i in range(5)]
        caw_clock.offset = 400
        cell.hub.start()
        wait_for(
            "every message refused for its time",
            lambda: all(e == "timestamp_out_of_window" for _, e in outbox_rows(caw, ids)),
        )
        assert {s for s, _ in outbox_rows(caw, ids)} == {"pending"}  # none given up
    finally:
        caw_clock.offset = 0
    wait_for("all five delivered", lambda: set(ids) <= received_ids(coord), timeout=60)
    # The recipient may have them before the sender has read the hub's answer.
    wait_for("all five sent", lambda: {s for s, _ in outbox_rows(caw, ids)} == {"sent"})
    status = status_of(caw)
    assert (status["outbox_pending"], status["outbox_failed"]) == (0, 0)


def test_a_clock_step_seals_a_message_with_documents_again(
    cell: GatewayCell, gws: RunningGateways, caw_clock: Clock
) -> None:
    """A referral with a scanned letter, queued while caw's clock is 400 s ahead: its envelope
    (sealed into a spool file) carries the wrong time, so after the clock is corrected it is
    sealed again from its kept documents, and arrives with the letter intact."""
    caw, coord = gws["caw"], gws["coord"]
    letter = pdf("Brief van de school")
    cell.hub.stop()
    wait_for("caw sees the hub gone", lambda: not status_of(caw)["connected"])
    try:
        caw_clock.offset = 400
        uploaded = caw.request(
            "POST",
            "/v1/attachments",
            params={"name": "brief.pdf"},
            data=letter,
            headers={"Content-Type": "application/pdf"},
        )
        assert uploaded.status_code == 201, uploaded.text
        attachment = uploaded.json()["attachment_id"]
        sent = send(caw, case_ref("clock-documents"), wait=False, attachments=[attachment])
        cell.hub.start()
        wait_for(
            "refused for its time",
            lambda: outbox_rows(caw, [sent["message_id"]])[0][1] == "timestamp_out_of_window",
        )
    finally:
        caw_clock.offset = 0
    message_id = sent["message_id"]
    wait_for("delivered", lambda: message_id in received_ids(coord), timeout=60)
    document = coord.request("GET", f"/v1/messages/{message_id}/attachments/0")
    assert document.status_code == 200
    assert document.content == letter


# 2. A poison envelope.
def sealed_by(
    gws: RunningGateways, sender: str, recipient: str, body: bytes, case: str, trailing: int = 0
) -> bytes:
    """An envelope ``sender`` really sealed (and signed) for ``recipient``, any body, followed
    in the plaintext by ``trailing`` bytes as if they were a document."""
    gateway = gws[sender].gateway
    config = gateway.config.gateway
    identity = unlock(gateway.config.path(config.key_file).read_bytes(), PASSPHRASE).identity
    now = int(time.time())
    offered = gws.loop.run(gateway.peers.fetch(gateway.directory, [recipient], now))
    statement = current_prekey(offered[recipient])
    assert statement is not None
    spec = MessageSpec(
        config.cell_id,
        sender,
        "aanmelding",
        case,
        {recipient: statement.prekey},
        statement.prekey.suite,
    )
    if not trailing:
        return seal(identity, spec, body, now=now, ttl=DAY, random=os.urandom)
    parts = draw_parts(os.urandom, now, DAY)
    _, pieces = seal_from_parts_stream(identity, spec, parts, body, [(trailing, [b"x" * trailing])])
    return b"".join(pieces)


def test_a_poison_envelope_is_quarantined_and_the_next_message_delivered(
    gws: RunningGateways,
) -> None:
    """caw signs an envelope whose body nests 1,200 levels deep; the hub cannot see the body
    and delivers it to coord. coord keeps it in quarantine, acknowledges it, and goes on: the
    next message arrives within seconds."""
    caw, coord = gws["caw"], gws["coord"]
    before = status_of(coord)["quarantined"]
    poison = sealed_by(gws, "caw", "coord", POISON_BODY, case_ref("poison"))
    client = caw.gateway.client
    gws.loop.run(client.submit(poison))
    valid = send(caw, case_ref("after-poison"))["message_id"]
    wait_for("the next message delivered", lambda: valid in received_ids(coord), timeout=10)
    status = status_of(coord)
    assert status["quarantined"] == before + 1
    assert status["degraded"] == []
    poison_id = UnverifiedEnvelope.parse(poison).message_id.hex()
    listing = coord.request("GET", "/v1/quarantine").json()["envelopes"]
    assert [(e["message_id"], e["code"], e["kept"]) for e in listing][-1] == (
        poison_id,
        "body_schema_violation",
        True,
    )
    metrics = coord.request("GET", "/metrics").text
    assert f"livcr_gateway_quarantined {before + 1}" in metrics


@pytest.mark.parametrize(
    ("size", "code"),
    [(5 * MIB, "body_schema_violation"), (64 * MIB, "body_schema_violation")],
)
def test_a_big_envelope_never_blocks_the_next_message(
    gws: RunningGateways, tmp_path: Path, size: int, code: str
) -> None:
    """A participant talking to the hub without a gateway (caw's key, no outbox) streams coord
    an envelope far over the old push frame limit; then caw's gateway sends a small message.
    The push carries notices, so the small one arrives within seconds while the big one is
    fetched beside the stream and opened from its spool file. Its body is no JSON, and what
    follows it no declared document: it is quarantined with its code (kept in the store up to
    16 MiB, in a file beyond) and acknowledged, so it blocks nothing, now or after a restart."""
    caw, coord = gws["caw"], gws["coord"]
    case = case_ref(f"big {size}")
    big = sealed_by(gws, "caw", "coord", b"not a body", case, trailing=size)
    source = tmp_path / "big.envelope"
    source.write_bytes(big)
    gws.loop.run(caw.gateway.client.submit_file(source), timeout=120)
    del big
    valid = send(caw, case_ref(f"after big {size}"))["message_id"]
    wait_for("the next message delivered", lambda: valid in received_ids(coord), timeout=15)
    big_id = _message_id(source)

    def quarantined() -> set[tuple[str, str]]:
        listing = coord.request("GET", "/v1/quarantine").json()["envelopes"]
        return {(e["message_id"], e["code"]) for e in listing}

    wait_for("the big one quarantined", lambda: (big_id, code) in quarantined(), timeout=90)
    assert big_id not in received_ids(coord)

    def acknowledged() -> bool:  # the receipt goes to the hub once the quarantine row is in
        pending = gws.loop.run(coord.gateway.client.inbox())
        return big_id not in {d.message_id for d in pending.deliveries}

    wait_for("the big one acknowledged", acknowledged, timeout=30)

    # Erasing the case erases the quarantined envelope too, row or file; its code stays.
    config = coord.gateway.ctx.config
    database = config.path(config.gateway.database)
    kept_file = database.with_name(database.name + ".quarantine") / big_id
    assert kept_file.exists() == (size > KEPT_IN_STORE_BYTES)
    assert quarantine_entry(coord, big_id)[1:] == (code, True, False)
    assert coord.request("POST", f"/v1/cases/{case}/erase").status_code == 200
    assert quarantine_entry(coord, big_id)[1:] == (code, False, True)
    assert not kept_file.exists()
    with contextlib.closing(sqlite3.connect(database)) as db:
        (left,) = db.execute(
            "SELECT envelope FROM quarantine WHERE message_id = ?", (bytes.fromhex(big_id),)
        ).fetchone()
    assert left is None


def quarantine_entry(gw: RunningGateway, message_id: str) -> tuple[str, str, bool, bool]:
    """(message id, code, kept, erased) of a quarantined envelope, as the local API lists it."""
    listing = gw.request("GET", "/v1/quarantine").json()["envelopes"]
    (entry,) = [e for e in listing if e["message_id"] == message_id]
    return entry["message_id"], entry["code"], entry["kept"], entry["erased"]


def _message_id(source: Path) -> str:
    incoming = IncomingEnvelope()
    with source.open("rb") as envelope:
        incoming.feed(envelope.read(256 * 1024))
    assert incoming.header is not None
    return incoming.header.core.message_id.hex()


def test_an_envelope_that_breaks_its_handling_is_quarantined_not_fatal(
    gws: RunningGateways, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong with one envelope (here: a failure that is no library error), it is
    quarantined as ``unexpected`` and acknowledged; the inbox goes on."""
    caw, coord = gws["caw"], gws["coord"]
    inbox = coord.gateway.inbox
    real = inbox._check
    broken_case = case_ref("broken-handling")

    async def breaks(core: Any, body: bytes, logged_at: int) -> None:
        if core.case_ref == broken_case:
            raise RuntimeError("a bug in the gateway")
        await real(core, body, logged_at)

    monkeypatch.setattr(inbox, "_check", breaks)
    first = send(caw, broken_case)["message_id"]
    second = send(caw, case_ref("after-the-bug"))["message_id"]
    wait_for("the next message delivered", lambda: second in received_ids(coord), timeout=10)
    assert first not in received_ids(coord)
    listing = coord.request("GET", "/v1/quarantine").json()["envelopes"]
    assert (first, "unexpected") in {(e["message_id"], e["code"]) for e in listing}


# 3. The hub names an envelope falsely.
def test_the_opened_header_decides_which_message_arrived(
    gws: RunningGateways, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub labels a new envelope with the id of a message coord already holds. coord opens
    it anyway, stores it under the id its signed header carries, and acknowledges that id for
    the envelope it opened: the hub can neither make it skip a message nor file one under
    another id."""
    caw, coord = gws["caw"], gws["coord"]
    held = send(caw, case_ref("held"))["message_id"]
    wait_for("the first message delivered", lambda: held in received_ids(coord))
    envelope = sealed_by(
        gws, "caw", "coord", encode_body(example_body("aanmelding")), case_ref("new")
    )
    true_id = UnverifiedEnvelope.parse(envelope).message_id
    acknowledged: list[tuple[bytes, int, bytes]] = []

    async def ack(receipts: list[tuple[bytes, int, bytes]]) -> Any:
        acknowledged.extend(receipts)

    monkeypatch.setattr(coord.gateway.client, "ack", ack)
    item = DeliveryItem(0, held, int(time.time()), None, len(envelope))
    spool = coord.gateway.inbox.spool  # the hub's bytes under that label, as fetched
    spool.folder.mkdir(mode=0o700, exist_ok=True)
    spool.path(item).write_bytes(envelope)
    gws.loop.run(coord.gateway.receive(item))
    assert true_id.hex() in received_ids(coord)
    ((message_id, _, _),) = acknowledged
    assert message_id == true_id


# 4. A hub answer that breaks the contract.
def test_a_receipt_without_logged_at_is_retried_not_fatal(
    gws: RunningGateways, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's first answer to a submission lacks ``logged_at``: the client says so with a
    coded error, the outbox retries, the same bytes get their receipt, and the loop lives on."""
    caw, coord = gws["caw"], gws["coord"]
    client = caw.gateway.client
    real_submit = client.submit
    broken: list[bytes] = []

    async def submit(envelope: bytes) -> ReceiptAnswered:
        answer = await real_submit(envelope)
        if not broken:
            broken.append(envelope)
            document = msgspec.to_builtins(answer.receipt)
            del document["logged_at"]
            decode_answer(ReceiptAnswer, msgspec.json.encode(document))  # raises, coded
        return answer

    monkeypatch.setattr(client, "submit", submit)
    answer = send(caw, case_ref("bad-receipt"))
    message_id = answer["message_id"]
    assert answer["leaf_index"] is not None  # 201 with the receipt, not 202 after a wait
    assert bytes.fromhex(message_id) == UnverifiedEnvelope.parse(broken[0]).message_id
    wait_for("delivered", lambda: message_id in received_ids(coord))
    assert outbox_rows(caw, [message_id]) == [("sent", None)]
    assert status_of(caw)["degraded"] == []
    with pytest.raises(HubAnswerInvalid) as raised:
        decode_answer(ReceiptAnswer, b"{}")
    assert raised.value.code == "hub_answer_invalid"
