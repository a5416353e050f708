"""Envelopes over the inline limit: streamed to out-of-line storage (a file beside SQLite, chunk
rows in PostgreSQL), announced by notices, fetched with a streamed GET that resumes, and gone
with their rows."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import hub_harness
import pytest
from conftest import StoreTarget
from factories import case_ref
from hub_harness import Clock, HubHarness, make_config, refused, running_hub

from hub.store.files import PART_SUFFIX
from hub.store.sqlite import ENVELOPES_SUFFIX
from livcr_exchange.audit.leaves import delivery_receipt_message, envelope_hash
from livcr_exchange.envelope import UnverifiedEnvelope
from livcr_exchange.envelope.open import MAX_ENVELOPE_BYTES
from livcr_exchange.request_auth import digest_field

clock_fixture = hub_harness.clock_fixture
CASE = case_ref("big envelopes")
BIG_BODY = 5 * 1024 * 1024  # over the inline limit: streamed


@pytest.fixture(name="harness")
async def big_harness_fixture(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> AsyncIterator[HubHarness]:
    config = make_config(tmp_path, store_target, max_request_bytes=MAX_ENVELOPE_BYTES)
    async with running_hub(tmp_path, clock, config, store_target) as running:
        yield running


async def out_of_line(harness: HubHarness) -> int:
    """Envelope files beside the SQLite store (parts included), or chunk rows in PostgreSQL."""
    if harness.target.kind == "sqlite":
        assert harness.target.path is not None
        folder = harness.target.path.with_name(harness.target.path.name + ENVELOPES_SUFFIX)
        return len(list(folder.iterdir()))
    rows = await harness.store.operator_rows("SELECT COUNT(*) FROM envelope_chunks", ())
    return int(rows[0][0])


async def send_big(harness: HubHarness, tmp_path: Path, sender: str = "coord") -> bytes:
    envelope = harness.seal(sender, ["caw"], case_ref=CASE, opaque_size=BIG_BODY)
    source = tmp_path / "big.envelope"
    source.write_bytes(envelope)
    answered = await harness.typed_client(sender).submit_file(source)
    assert not answered.accepted_before
    return envelope


async def test_a_big_envelope_streams_in_and_out_and_goes_with_its_ack(
    harness: HubHarness, tmp_path: Path
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = await send_big(harness, tmp_path)
    assert await out_of_line(harness) >= 1
    caw = harness.client("caw")
    (notice,) = (await caw.inbox())["deliveries"]
    assert notice["size"] == len(envelope)
    assert "envelope" not in notice
    assert await caw.fetch_envelope(notice["message_id"]) == envelope
    # Resumed after a cut: from byte N, 206 with its Content-Range.
    target = tmp_path / "fetched"
    target.write_bytes(envelope[:1_000_000])
    await harness.typed_client("caw").download(notice["message_id"], target, len(envelope))
    assert target.read_bytes() == envelope
    message_id = bytes.fromhex(notice["message_id"])
    digest = envelope_hash(envelope)
    signature = harness.identity("caw").sign(
        delivery_receipt_message(message_id, digest, "caw", harness.clock())
    )
    await caw.ack([(message_id, harness.clock(), signature)])
    assert await out_of_line(harness) == 0  # deleting means gone


async def test_a_range_is_served_with_206_and_a_bad_one_refused(
    harness: HubHarness, tmp_path: Path
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = await send_big(harness, tmp_path)
    message_id = UnverifiedEnvelope.parse(envelope).message_id.hex()
    path = f"/v1/deliveries/{message_id}"
    for given, status in ((f"bytes={len(envelope) - 10}-", 206), ("bytes=0-5", 416)):
        headers = harness.signed_headers("caw", "GET", path)
        headers["Range"] = given
        async with harness.session.get(harness.url + path, headers=headers) as response:
            assert response.status == status
            if status == 206:
                assert await response.read() == envelope[-10:]
                assert response.headers["Content-Range"] == (
                    f"bytes {len(envelope) - 10}-{len(envelope) - 1}/{len(envelope)}"
                )


async def test_only_a_recipient_with_a_pending_delivery_gets_the_bytes(
    harness: HubHarness, tmp_path: Path
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = await send_big(harness, tmp_path)
    message_id = UnverifiedEnvelope.parse(envelope).message_id.hex()
    answers = [
        await refused(harness.client("clb").fetch_envelope(message_id)),  # not a recipient
        await refused(harness.client("coord").fetch_envelope(message_id)),  # the sender
        await refused(harness.client("caw").fetch_envelope("00" * 16)),  # no such id
        await refused(harness.client("caw").fetch_envelope("not-an-id")),
    ]
    assert {(a.status, a.code, a.detail) for a in answers} == {
        (404, "not_found", "no such delivery")
    }


async def test_a_refused_streamed_envelope_leaves_nothing(
    harness: HubHarness, tmp_path: Path
) -> None:
    """A tampered body fails the envelope signature after it was stored: it is deleted, and
    the refusal is audited with its message id."""
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = bytearray(harness.seal("coord", ["caw"], case_ref=CASE, opaque_size=BIG_BODY))
    envelope[len(envelope) // 2] ^= 1
    source = tmp_path / "tampered"
    source.write_bytes(bytes(envelope))
    before = await harness.snapshot()
    problem = await refused(harness.typed_client("coord").submit_file(source))
    assert problem.code == "bad_signature"
    await harness.assert_refused(
        before,
        actor="coord",
        action="submit",
        code="bad_signature",
        message_id=UnverifiedEnvelope.parse(bytes(envelope)).message_id,
    )
    assert await out_of_line(harness) == 0


async def test_a_request_whose_digest_does_not_match_its_streamed_body_is_refused(
    harness: HubHarness,
) -> None:
    """The request signature is checked over the digest computed while streaming."""
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE, opaque_size=BIG_BODY)
    headers = harness.signed_headers("coord", "POST", "/v1/envelopes")
    headers["Content-Digest"] = digest_field(b"\x00" * 32)
    async with harness.session.post(
        harness.url + "/v1/envelopes", data=_pieces(envelope), headers=headers
    ) as response:
        assert response.status == 401
        assert (await response.json())["code"] == "bad_signature"
    assert await out_of_line(harness) == 0
    assert (await harness.snapshot()).counts["envelopes"] == 0


async def test_a_header_of_another_sender_is_refused_before_the_body_is_stored(
    harness: HubHarness,
) -> None:
    await harness.case_in(CASE, "in_screening", ["caw"])
    envelope = harness.seal("coord", ["caw"], case_ref=CASE, opaque_size=BIG_BODY)
    headers = harness.signed_headers("caw", "POST", "/v1/envelopes")  # caw posts coord's
    try:
        async with harness.session.post(
            harness.url + "/v1/envelopes", data=_pieces(envelope), headers=headers
        ) as response:
            status: int | None = response.status
    except aiohttp.ClientError:  # the hub answered and closed before the body was sent
        status = None
    assert status is None or status == 403  # unknown_sender, before the body is stored
    assert await out_of_line(harness) == 0
    assert (await harness.snapshot()).counts["envelopes"] == 0


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 256 * 1024):
        yield data[start : start + 256 * 1024]
        await asyncio.sleep(0)


async def test_crash_leftovers_are_swept_by_the_store_that_opens_alone(tmp_path: Path) -> None:
    """A part and a published file whose row never committed (a crash between the two) go
    when the SQLite store opens, unless another process has it open (an operator command
    beside a running hub must not sweep the hub's uploads in flight)."""
    from hub.store.sqlite import SQLiteStore  # noqa: PLC0415

    database = tmp_path / "hub.sqlite3"
    folder = database.with_name(database.name + ENVELOPES_SUFFIX)
    first = SQLiteStore(database)
    await first.open()
    leftovers = {"ab" * 16 + PART_SUFFIX, "cd" * 16}
    for name in leftovers:
        (folder / name).write_bytes(b"half")
    beside = SQLiteStore(database)
    await beside.open()
    await beside.close()
    assert {p.name for p in folder.iterdir()} == leftovers  # the first holds the store
    await first.close()
    again = SQLiteStore(database)
    await again.open()
    await again.close()
    assert list(folder.iterdir()) == []


def test_inbox_items_no_longer_carry_base64() -> None:
    """A notice decodes without an envelope field; an old item with one is refused."""
    import msgspec  # noqa: PLC0415

    from livcr_exchange.hub_answers import DeliveryItem  # noqa: PLC0415

    notice = {"seq": 1, "message_id": "ab" * 16, "logged_at": 5, "leaf_index": 3, "size": 9}
    assert msgspec.convert(notice, DeliveryItem).size == 9
    old = {**notice, "envelope": base64.b64encode(b"x").decode()}
    del old["size"]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(old, DeliveryItem)
