"""A receiving gateway checks what its own directory can judge, whatever the hub let through.

The hub enforces policy, but it is not trusted to: a hub that routes what policy forbids (or a
sender that went around its gateway and a hub that did not look) must not land a message in a
dossier. These tests hand the gateway a delivery directly, as such a hub would.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator

import msgspec
import pytest
from gateway_harness import PASSPHRASE, GatewayCell, RunningGateways

from gateway.prekeys import current_prekey
from livcr_exchange.attachments import AttachmentRef, attachment_digest
from livcr_exchange.document_examples import pdf, png
from livcr_exchange.envelope import MessageSpec, seal, seal_stream
from livcr_exchange.envelope.open import UnverifiedEnvelope
from livcr_exchange.hub_answers import DeliveryItem
from livcr_exchange.keyfile import unlock
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import encode_body

CASE_REF = "case-2s5vaqfofzaywgusee3q3wtcqm"
DAY = 86_400


@pytest.fixture(scope="module")
def gws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateways]:
    cell = GatewayCell.create(tmp_path_factory.mktemp("cell"))
    running = RunningGateways(cell, ["coord", "caw", "clb"])
    try:
        yield running
    finally:
        running.close()
        cell.hub.stop()


def delivery_from(gws: RunningGateways, sender: str, recipient: str, purpose: str) -> DeliveryItem:
    """An envelope ``sender`` really sealed for ``recipient``, as a hub would deliver it."""
    gateway = gws[sender].gateway
    config = gateway.config.gateway
    key_file = gateway.config.path(config.key_file).read_bytes()
    identity = unlock(key_file, PASSPHRASE).identity
    now = int(time.time())
    offered = gws.loop.run(gateway.peers.fetch(gateway.directory, [recipient], now))
    statement = current_prekey(offered[recipient])
    assert statement is not None
    spec = MessageSpec(
        config.cell_id,
        sender,
        purpose,
        CASE_REF,
        {recipient: statement.prekey},
        statement.prekey.suite,
    )
    body = encode_body(example_body(purpose))
    envelope = seal(identity, spec, body, now=now, ttl=DAY, random=os.urandom)
    return spooled(gws, recipient, envelope, now)


def spooled(gws: RunningGateways, recipient: str, envelope: bytes, now: int) -> DeliveryItem:
    """The notice of ``envelope``, as the hub would deliver it: its bytes already fetched into
    the recipient's spool."""
    message_id = UnverifiedEnvelope.parse(envelope).message_id.hex()
    item = DeliveryItem(0, message_id, now, None, len(envelope))
    spool = gws[recipient].gateway.inbox.spool
    spool.folder.mkdir(mode=0o700, exist_ok=True)
    spool.path(item).write_bytes(envelope)
    return item


def stored(
    gws: RunningGateways, name: str, table: str, message_id: str
) -> list[tuple[object, ...]]:
    database = gws[name].gateway.config.path(gws[name].gateway.config.gateway.database)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        column = "code" if table == "quarantine" else "purpose"
        return connection.execute(
            f"SELECT {column} FROM {table} WHERE message_id = ?",  # noqa: S608  (a fixed table)
            (bytes.fromhex(message_id),),
        ).fetchall()


def test_a_purpose_the_senders_role_may_not_send_is_refused_after_opening(
    gws: RunningGateways,
) -> None:
    # A deelnemer may receive screening questions but only the coordinator may ask them.
    item = delivery_from(gws, "clb", "caw", "screening_vraag")
    gws.loop.run(gws["caw"].gateway.receive(item))
    assert stored(gws, "caw", "quarantine", item.message_id) == [("purpose_not_allowed",)]
    assert stored(gws, "caw", "dossier", item.message_id) == []


def test_the_same_purpose_from_the_role_that_may_send_it_is_stored(gws: RunningGateways) -> None:
    item = delivery_from(gws, "coord", "caw", "screening_vraag")
    gws.loop.run(gws["caw"].gateway.receive(item))
    assert stored(gws, "caw", "quarantine", item.message_id) == []
    assert stored(gws, "caw", "dossier", item.message_id) == [("screening_vraag",)]


def documents_delivery(
    gws: RunningGateways, purpose: str, files: list[tuple[str, str, bytes]], sent: list[bytes]
) -> DeliveryItem:
    """``coord`` seals ``purpose`` to ``caw`` naming ``files`` and carrying the bytes ``sent``
    (its own checks skipped, as a sender that went around its gateway)."""
    gateway = gws["coord"].gateway
    config = gateway.config.gateway
    identity = unlock(gateway.config.path(config.key_file).read_bytes(), PASSPHRASE).identity
    now = int(time.time())
    offered = gws.loop.run(gateway.peers.fetch(gateway.directory, ["caw"], now))
    statement = current_prekey(offered["caw"])
    assert statement is not None
    spec = MessageSpec(
        config.cell_id,
        "coord",
        purpose,
        CASE_REF,
        {"caw": statement.prekey},
        statement.prekey.suite,
    )
    refs = tuple(
        AttachmentRef(name=n, media_type=t, size=len(d), digest=attachment_digest(d).hex())
        for n, t, d in files
    )
    body = encode_body(msgspec.structs.replace(example_body(purpose), attachments=refs))
    pieces = seal_stream(
        identity, spec, body, [(len(d), [d]) for d in sent], now=now, ttl=DAY, random=os.urandom
    )
    return spooled(gws, "caw", b"".join(pieces), now)


def test_received_documents_are_checked_by_content_and_refused_with_their_code(
    gws: RunningGateways,
) -> None:
    lying = documents_delivery(gws, "actieplan", [("plan.pdf", "application/pdf", png())], [png()])
    gws.loop.run(gws["caw"].gateway.receive(lying))
    assert stored(gws, "caw", "quarantine", lying.message_id) == [("attachment_type_mismatch",)]
    assert stored(gws, "caw", "dossier", lying.message_id) == []
    # The next message still arrives.
    after = delivery_from(gws, "coord", "caw", "screening_vraag")
    gws.loop.run(gws["caw"].gateway.receive(after))
    assert stored(gws, "caw", "dossier", after.message_id) == [("screening_vraag",)]


def test_valid_received_documents_are_kept_in_the_dossier_sealed_at_rest(
    gws: RunningGateways,
) -> None:
    document = pdf()
    item = documents_delivery(
        gws, "actieplan", [("plan.pdf", "application/pdf", document)], [document]
    )
    gws.loop.run(gws["caw"].gateway.receive(item))
    assert stored(gws, "caw", "quarantine", item.message_id) == []
    assert stored(gws, "caw", "dossier", item.message_id) == [("actieplan",)]
    folder = gws["caw"].gateway.config.path("documents")
    files = list(folder.iterdir())
    assert len(files) == 1
    assert document not in files[0].read_bytes()
    assert b"%PDF" not in files[0].read_bytes()
