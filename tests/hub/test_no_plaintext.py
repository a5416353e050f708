"""The hub's database, write-ahead log and log events hold no plaintext (DESIGN §2).

Bodies carry a marker; the hub accepts, queues, pushes, delivers and logs them, and refuses a
few requests whose JSON carries the marker too. Then every file the hub wrote (the SQLite file,
its -wal and -shm) is searched for the marker in several encodings, while the hub runs and after
it shut down, and so is every captured log event. On PostgreSQL, whose files belong to the
server, every table of the hub's database is dumped (COPY, bytea as hex) and searched instead.
A positive control finds the ciphertext, so the search does look where the envelopes are.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import asyncpg
import hub_harness
import msgspec
from conftest import StoreTarget
from factories import FICHE, MEETING_REF
from hub_harness import Clock, HubHarness, refused, running_hub
from structlog.testing import capture_logs

from livcr_exchange.audit.leaves import delivery_receipt_message, envelope_hash
from livcr_exchange.bodies import Person
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import encode_body

# The fixtures `clock` and `harness` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture


MARKER = "Plaintextmarker"  # a family name, as a body would carry one
CASE = "case-l4pnkngwilfxwwn5h24aipimz4"
PRESENT = ("caw", "coord", "io-politie")


def encodings(text: str) -> list[bytes]:
    """``text`` as stored text, UTF-16, hex, and base64 at each of the three alignments."""
    raw = text.encode()
    found = [raw, text.encode("utf-16-le"), raw.hex().encode(), raw.hex().upper().encode()]
    for shift in range(3):
        encoded = base64.b64encode(b"\x00" * shift + raw)
        found.append(encoded[4:-4])  # the part that depends on the marker alone
    return found


def hub_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


async def database_tables(dsn: str) -> dict[str, bytes]:
    """Every table of a PostgreSQL database as COPY text (bytea columns appear as hex)."""
    connection = await asyncpg.connect(dsn)
    try:
        names = [
            r["tablename"]
            for r in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        tables: dict[str, bytes] = {}
        for name in names:
            buffer = io.BytesIO()
            await connection.copy_from_table(name, output=buffer)
            tables[name] = buffer.getvalue()
        return tables
    finally:
        await connection.close()


async def stored(target: StoreTarget) -> dict[str, bytes]:
    """What the hub's store holds, as bytes to search: its files, or its database's tables."""
    if target.kind == "postgresql":
        assert target.dsn is not None
        return await database_tables(target.dsn)
    assert target.path is not None
    return hub_files(target.path.parent)


def assert_no_marker(files: dict[str, bytes]) -> None:
    for name, data in files.items():
        for needle in encodings(MARKER):
            assert needle not in data, f"{needle!r} found in {name}"


def bodies() -> dict[str, bytes]:
    person = Person(family_name=MARKER, given_name=MARKER, birth_date="2008-05-17")
    referral = example_body("aanmelding")
    referral = msgspec.structs.replace(
        referral,
        person=person,
        description=f"{MARKER} deelt propaganda in de klasgroep.",  # type: ignore[call-arg]
    )
    question = msgspec.structs.replace(example_body("screening_vraag"), person=person)  # type: ignore[call-arg]
    fiche = msgspec.structs.replace(
        example_body(FICHE),
        case_ref=CASE,
        meeting_ref=MEETING_REF,
        contact_service=f"Dienst {MARKER}",  # type: ignore[call-arg]
    )
    return {
        "aanmelding": encode_body(referral),
        "screening_vraag": encode_body(question),
        FICHE: encode_body(fiche),
    }


async def exchange(harness: HubHarness) -> list[bytes]:
    """Referral, screening questions (single and batch), a co-signed fiche; push and delivery."""
    texts = bodies()
    for text in texts.values():
        assert MARKER.encode() in text
    coord, caw = harness.client("coord"), harness.client("caw")
    socket = await harness.client("io-politie").stream()
    sent = [
        harness.seal("caw", ["coord"], texts["aanmelding"], purpose="aanmelding", case_ref=CASE)
    ]
    await caw.submit(sent[0])
    await coord.change_members(CASE, add=["io-politie"])
    await coord.move_case(CASE, "in_screening")
    question = harness.seal("coord", ["caw", "io-politie"], texts["screening_vraag"], case_ref=CASE)
    sent.append(question)
    await coord.submit(question)
    batch = [harness.seal("coord", ["caw"], texts["screening_vraag"], case_ref=CASE) for _ in "ab"]
    sent += batch
    assert all("receipt" in r for r in await coord.submit_batch(batch))
    await coord.move_case(CASE, "geagendeerd")
    await coord.record_meeting(CASE, MEETING_REF, list(PRESENT))
    await coord.move_case(CASE, "besproken")
    block = harness.cell.cosign_block(texts[FICHE], PRESENT, case_ref=CASE)
    fiche = harness.seal(
        "coord",
        ["io-politie"],
        texts[FICHE],
        purpose=FICHE,
        case_ref=CASE,
        cosign_block=block,
        meeting_ref=MEETING_REF,
    )
    sent.append(fiche)
    await coord.submit(fiche)
    try:
        pushed = [await socket.receive_json(timeout=5) for _ in range(3)]  # caught_up, 2 live
        assert [p["type"] for p in pushed] == ["caught_up", "delivery", "delivery"]
    finally:
        await socket.close()
    # caw fetches and acknowledges two of its three; one stays queued in the store.
    items = (await caw.inbox())["deliveries"]
    receipts = []
    for item in items[:2]:
        message_id = bytes.fromhex(item["message_id"])
        digest = envelope_hash(await caw.fetch_envelope(item["message_id"]))
        message = delivery_receipt_message(message_id, digest, "caw", harness.clock())
        receipts.append((message_id, harness.clock(), harness.identity("caw").sign(message)))
    assert (await caw.ack(receipts))["acknowledged"] == 2
    # Refused requests carrying the marker in their JSON, or a body as an envelope.
    for path, body in [
        ("/v1/cases", msgspec.json.encode({"case_ref": MARKER, "members": []})),
        (
            "/v1/cases",
            msgspec.json.encode(
                {"case_ref": "case-amb5oxvlcf3sqv4rq5aw5cg64e", "members": [MARKER]}
            ),
        ),
        ("/v1/envelopes", texts["aanmelding"]),
    ]:
        problem = await refused(coord.call("POST", path, body=body))
        assert 400 <= problem.status < 500
    return sent


async def test_the_hub_stores_and_logs_no_plaintext(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> None:
    with capture_logs() as events:
        async with running_hub(tmp_path, clock, target=store_target) as harness:
            sent = await exchange(harness)
            running = await stored(store_target)
            expected = (
                {"hub.sqlite3", "hub.sqlite3-wal"}
                if store_target.kind == "sqlite"
                else {
                    "envelopes",
                    "leaves",
                }
            )
            assert expected <= set(running)
            # Positive control: the ciphertext of a queued envelope is in the store.
            queued = sent[3][-200:-100]  # the batch envelope caw has not acked
            assert any(queued in data or queued.hex().encode() in data for data in running.values())
            assert_no_marker(running)
    stopped = await stored(store_target)
    assert_no_marker(stopped)
    assert events, "no log events were captured"
    logged = repr(events).encode()
    for needle in encodings(MARKER):
        assert needle not in logged
    for envelope in sent:  # nor the ciphertext: logs say who, what kind and when, nothing more
        assert base64.b64encode(envelope)[8:72] not in logged
