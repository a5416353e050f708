"""A gateway while its hub is away: a real hub process, stopped and started, and real gateways.

With ``wait: false`` a message is sealed to the recipients' cached prekeys (fetched from the hub
and verified earlier, verified again now), queued durably, and delivered once the hub is back;
one that waited longer than the hub accepts is sealed again under the same message id. Without
a recent cached prekey of every recipient, or with ``wait``, the answer is 503
``hub_unavailable`` and nothing is stored.

A hub's answer can be away too: a submission it committed whose answer never arrived. The
gateway then sends the same bytes again, and the hub answers with the original receipt, which
the gateway checks like any (spec §9.3); where the hub holds the message but cannot show a
receipt, the message counts as sent with a receipt that claims no proof.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from factories import CELL_ID, NOW, case_ref
from factories import Cell as KeyCell
from gateway_harness import PASSPHRASE, GatewayCell, RunningGateway, RunningGateways, load_spec
from structlog.testing import capture_logs

from gateway.core import RESEAL_AFTER_SECONDS, Gateway, HubUnavailable
from gateway.prekeys import PREKEY_CACHE_MAX_AGE, PeerPrekeys
from gateway.store import GatewayStore
from gateway.trust import DIRECTORY_META_KEY, DirectoryUntrusted
from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.constants import MAX_CLOCK_SKEW
from livcr_exchange.envelope import UnverifiedEnvelope
from livcr_exchange.errors import KeyRevoked
from livcr_exchange.keys import Suite
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import encode_body
from livcr_exchange.request_auth import HubBinding
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubClient
from livcr_exchange.statements import PrekeyStatement

SPEC = load_spec()
DAY = 86_400
ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER, "clb": Role.DEELNEMER}
REFERRAL = msgspec.json.decode(encode_body(example_body("aanmelding")))


@dataclass
class Clock:
    """The system clock, moved by ``offset`` seconds (caw's own clock in these tests)."""

    offset: int = 0

    def __call__(self) -> int:
        return int(time.time()) + self.offset


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayCell]:
    # Enrolled a day ago, so that caw's clock may run well behind without leaving the window.
    cell = GatewayCell.create(tmp_path_factory.mktemp("gateway-offline"), ROLES, enrolled_ago=DAY)
    try:
        yield cell
    finally:
        cell.hub.stop()


@pytest.fixture(scope="module")
def caw_clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def gws(cell: GatewayCell, caw_clock: Clock) -> Iterator[RunningGateways]:
    running = RunningGateways(cell, ["coord", "caw"], clocks={"caw": caw_clock})
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def hub_away(cell: GatewayCell, gws: RunningGateways, caw_clock: Clock) -> Iterator[None]:
    """The hub stopped (caw has seen it go); afterwards it runs again and caw is back on it."""
    cell.hub.stop()
    wait_until(gws["caw"], lambda s: not s["connected"])
    try:
        yield
    finally:
        caw_clock.offset = 0
        if cell.hub.process is None or cell.hub.process.poll() is not None:
            cell.hub.start()  # unless the test started it
        for name in ("caw", "coord"):
            wait_until(gws[name], lambda s: s["connected"])


def call(gw: RunningGateway, method: str, route: str, status: int, **kwargs: Any) -> Any:
    response = gw.request(method, route, **kwargs)
    assert response.status_code == status, response.text
    SPEC[route][method].validate_response(response)
    return response.json()


def status_of(gw: RunningGateway) -> dict[str, Any]:
    status: dict[str, Any] = call(gw, "GET", "/v1/status", 200)
    return status


def wait_until(gw: RunningGateway, condition: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not condition(status := status_of(gw)):
        assert time.monotonic() < deadline, f"{gw.participant_id}: status stayed {status}"
        time.sleep(0.05)
    return status


def send(gw: RunningGateway, case_ref: str, to: list[str], status: int, **fields: Any) -> Any:
    request = {"case_ref": case_ref, "purpose": "aanmelding", "to": to, "body": REFERRAL}
    return call(gw, "POST", "/v1/messages", status, json={**request, **fields})


def counts(gw: RunningGateway) -> tuple[int, int, int]:
    status = status_of(gw)
    return status["outbox_pending"], status["outbox_failed"], status["dossier_records"]


def outbox(gw: RunningGateway, message_id: str) -> tuple[str, bytes]:
    """The outbox row of a message, read from the gateway's own SQLite file."""
    config = gw.gateway.config
    database = config.path(config.gateway.database)
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        state, envelope = connection.execute(
            "SELECT state, envelope FROM outbox WHERE message_id = ?", (bytes.fromhex(message_id),)
        ).fetchone()
    connection.close()
    return str(state), bytes(envelope)


def received(gw: RunningGateway, message_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = call(gw, "GET", "/v1/messages", 200, params={"after": 0, "limit": 1000, "wait": 2})
        for message in page["messages"]:
            if message["message_id"] == message_id:
                return dict(message)
    raise AssertionError(f"{gw.participant_id} never received {message_id}")


def test_the_spec_states_the_limits() -> None:
    text = (Path(__file__).resolve().parent.parent / "specs" / "gateway-api.yaml").read_text()
    assert f"`PREKEY_CACHE_MAX_AGE` = {PREKEY_CACHE_MAX_AGE} s" in text
    assert f"`RESEAL_AFTER_SECONDS` = {RESEAL_AFTER_SECONDS} " in text


@pytest.mark.usefixtures("hub_away")
def test_queued_while_the_hub_is_away_and_delivered_once_it_is_back(
    gws: RunningGateways, cell: GatewayCell
) -> None:
    caw, coord = gws["caw"], gws["coord"]
    before = counts(caw)
    queued = send(caw, "case-3fvioggs54n7nacgw4blvwxci4", ["coord"], 202, wait=False)
    assert queued["state"] == "queued"
    assert counts(caw) == (before[0] + 1, before[1], before[2] + 1)
    assert outbox(caw, queued["message_id"])[0] == "pending"
    (record,) = call(
        caw, "GET", "/v1/dossier", 200, params={"case_ref": "case-3fvioggs54n7nacgw4blvwxci4"}
    )["records"]
    assert (record["direction"], record["leaf_index"]) == ("sent", None)
    # Waiting for a receipt needs the hub: refused at once, nothing stored.
    problem = send(caw, "case-5w4ngsvl2osugetbzejd6cwug4", ["coord"], 503)
    assert problem["code"] == "hub_unavailable"
    assert counts(caw) == (before[0] + 1, before[1], before[2] + 1)

    cell.hub.start()
    message = received(coord, queued["message_id"])
    assert (message["sender_id"], message["case_ref"]) == ("caw", "case-3fvioggs54n7nacgw4blvwxci4")
    status = wait_until(caw, lambda s: s["outbox_pending"] == before[0])
    assert status["outbox_failed"] == before[1]
    assert outbox(caw, queued["message_id"])[0] == "sent"


@pytest.mark.usefixtures("hub_away")
def test_without_a_recent_cached_prekey_nothing_is_queued(
    gws: RunningGateways, caw_clock: Clock
) -> None:
    caw = gws["caw"]
    before = counts(caw)
    # A week and a day later (caw's clock says), the prekeys of coord that caw fetched from
    # the hub are too old (and here also expired): it has none to seal to.
    caw_clock.offset = PREKEY_CACHE_MAX_AGE + DAY
    problem = send(caw, "case-zoy77zhh4dl7ojuyw7wj3t22ua", ["coord"], 503, wait=False)
    assert problem["code"] == "hub_unavailable"
    assert "no recent verified prekey of coord" in problem["detail"]
    assert counts(caw) == before
    assert call(
        caw, "GET", "/v1/dossier", 200, params={"case_ref": "case-zoy77zhh4dl7ojuyw7wj3t22ua"}
    ) == {"records": []}


@pytest.mark.usefixtures("hub_away")
def test_a_message_that_waited_too_long_for_the_hub_is_sealed_again(
    gws: RunningGateways, cell: GatewayCell, caw_clock: Clock
) -> None:
    """Queued 20 minutes before the hub is back (caw's clock is set back to queue it then): the
    hub refuses timestamps older than MAX_CLOCK_SKEW, so caw seals it again, same message id."""
    caw, coord = gws["caw"], gws["coord"]
    before = counts(caw)
    caw_clock.offset = -1200
    queued = send(caw, "case-24yw5gnx5wr6pn5s2ir4w53peu", ["coord"], 202, wait=False)
    first = UnverifiedEnvelope.parse(outbox(caw, queued["message_id"])[1]).header.core
    caw_clock.offset = 0
    assert time.time() - first.timestamp > MAX_CLOCK_SKEW > RESEAL_AFTER_SECONDS

    cell.hub.start()
    message = received(coord, queued["message_id"])
    assert message["case_ref"] == "case-24yw5gnx5wr6pn5s2ir4w53peu"
    wait_until(caw, lambda s: s["outbox_pending"] == before[0])
    state, envelope = outbox(caw, queued["message_id"])
    again = UnverifiedEnvelope.parse(envelope).header.core
    assert state == "sent"
    assert again.message_id == first.message_id
    assert again.expires_at == first.expires_at
    assert again.timestamp - first.timestamp >= 1200 - 5
    assert counts(caw)[1] == before[1]


# A gateway (re)started while the hub is away starts on the directory it verified before.
def clb_database(cell: GatewayCell) -> Path:
    config = cell.config("clb")
    return config.path(config.gateway.database)


def open_clb_alone(cell: GatewayCell) -> None:
    """Open clb's gateway (no background tasks) and close it again; raises what opening raises."""

    async def run() -> None:
        async with Gateway.open(cell.config("clb"), passphrase=PASSPHRASE, background=False):
            pass

    asyncio.run(run())


@pytest.fixture
def clb_seen_the_hub_once(cell: GatewayCell) -> None:
    """clb has run once with the hub up: it verified the directory and cached coord's prekeys."""
    RunningGateways(cell, ["clb"]).close()


@pytest.mark.usefixtures("clb_seen_the_hub_once", "hub_away")
def test_a_gateway_started_while_the_hub_is_away_queues_and_catches_up(
    gws: RunningGateways, cell: GatewayCell
) -> None:
    clb = RunningGateways(cell, ["clb"])
    try:
        status = status_of(clb["clb"])
        assert not status["connected"]
        queued = send(clb["clb"], "case-zrmut63q3unzn52ok6acyxlahy", ["coord"], 202, wait=False)
        assert outbox(clb["clb"], queued["message_id"])[0] == "pending"

        cell.hub.start()
        message = received(gws["coord"], queued["message_id"])
        assert (message["sender_id"], message["case_ref"]) == (
            "clb",
            "case-zrmut63q3unzn52ok6acyxlahy",
        )
        wait_until(clb["clb"], lambda s: s["connected"] and s["outbox_pending"] == 0)
        assert outbox(clb["clb"], queued["message_id"])[0] == "sent"
    finally:
        clb.close()


@pytest.mark.usefixtures("clb_seen_the_hub_once", "hub_away")
def test_a_gateway_that_never_verified_a_directory_does_not_start_without_the_hub(
    cell: GatewayCell,
) -> None:
    with sqlite3.connect(clb_database(cell)) as connection:
        connection.execute("DELETE FROM meta WHERE key = ?", (DIRECTORY_META_KEY,))
    connection.close()
    with pytest.raises(HubUnavailable, match="never verified a directory"):
        open_clb_alone(cell)


@pytest.mark.usefixtures("clb_seen_the_hub_once", "hub_away")
def test_a_kept_directory_altered_on_disk_is_refused(cell: GatewayCell) -> None:
    with sqlite3.connect(clb_database(cell)) as connection:
        (text,) = connection.execute(
            "SELECT value FROM meta WHERE key = ?", (DIRECTORY_META_KEY,)
        ).fetchone()
        listing = json.loads(text)
        entry = bytearray(base64.b64decode(listing["entries"][0]))
        entry[-1] ^= 1  # the last byte of the root's signature
        listing["entries"][0] = base64.b64encode(bytes(entry)).decode()
        connection.execute(
            "UPDATE meta SET value = ? WHERE key = ?", (json.dumps(listing), DIRECTORY_META_KEY)
        )
    connection.close()
    with pytest.raises(DirectoryUntrusted, match="does not verify against the root key"):
        open_clb_alone(cell)


# A committed submission whose answer was lost.
@dataclass
class LosingAnswers:
    """Stands in for a gateway's ``HubClient.submit``: every submission reaches the hub, which
    commits it, but the first answer is lost on its way back (``after_loss`` runs then)."""

    submit: Callable[[bytes], Awaitable[dict[str, Any]]]
    after_loss: Callable[[dict[str, Any]], None] = lambda _: None
    sent: list[bytes] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, envelope: bytes) -> dict[str, Any]:
        self.sent.append(envelope)
        answer = await self.submit(envelope)
        if not self.lost:
            self.lost.append(answer)
            self.after_loss(answer)
            raise aiohttp.ServerDisconnectedError("the hub's answer was lost")
        return answer


def sent_record(gw: RunningGateway, case_ref: str) -> dict[str, Any]:
    (record,) = call(gw, "GET", "/v1/dossier", 200, params={"case_ref": case_ref})["records"]
    assert record["direction"] == "sent"
    return dict(record)


def test_a_committed_attempt_whose_answer_was_lost_ends_with_its_receipt(
    gws: RunningGateways, caw_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By the time caw tries again its envelope is older than RESEAL_AFTER_SECONDS, yet it sends
    the same bytes (sealed anew they would be refused as a replay), and the hub answers with the
    original receipt, which caw checks and returns from ``send``."""
    caw, coord = gws["caw"], gws["coord"]

    def later(_: dict[str, Any]) -> None:
        caw_clock.offset = RESEAL_AFTER_SECONDS + 30

    losing = LosingAnswers(caw.gateway.client.submit, later)
    monkeypatch.setattr(caw.gateway.client, "submit", losing)
    try:
        receipt = send(caw, "case-okje7odl7biornbmfpqqvayk7u", ["coord"], 201)
    finally:
        caw_clock.offset = 0
    (first,) = losing.lost
    assert len(losing.sent) == 2
    assert losing.sent[1] == losing.sent[0]  # the same bytes, not sealed again
    assert (receipt["leaf_index"], receipt["logged_at"]) == (
        first["leaf_index"],
        first["logged_at"],
    )
    assert receipt["tree_size"] >= first["tree_size"]
    assert receipt["checkpoint"].startswith(caw.gateway.config.log_origin + "\n")
    assert outbox(caw, receipt["message_id"]) == ("sent", losing.sent[0])
    record = sent_record(caw, "case-okje7odl7biornbmfpqqvayk7u")
    assert (record["leaf_index"], record["logged_at"]) == (first["leaf_index"], first["logged_at"])
    assert received(coord, receipt["message_id"])["case_ref"] == "case-okje7odl7biornbmfpqqvayk7u"


def test_a_message_the_hub_holds_without_a_receipt_is_sent_unproven(
    gws: RunningGateways, cell: GatewayCell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub committed the first attempt but cannot show its receipt (here: it keeps no log
    index for the pair, as for one accepted before it kept them), so it answers the same bytes
    ``replayed``. The message is sent; the receipt and the dossier claim no place in the log."""
    caw, coord = gws["caw"], gws["coord"]
    before = counts(caw)

    def forget_the_index(answer: dict[str, Any]) -> None:
        with sqlite3.connect(cell.hub.directory / "hub.sqlite3") as connection:
            connection.execute(
                "UPDATE seen SET leaf_index = NULL WHERE message_id = ?",
                (bytes.fromhex(answer["message_id"]),),
            )
        connection.close()

    losing = LosingAnswers(caw.gateway.client.submit, forget_the_index)
    monkeypatch.setattr(caw.gateway.client, "submit", losing)
    with capture_logs() as events:
        receipt = send(caw, "case-xgop3pmmk6ao57zqkk6egtnbdm", ["coord"], 201)
    (warning,) = [e for e in events if e["log_level"] == "warning"]
    assert warning["event"].startswith("sent, but the hub showed no receipt")
    assert warning["code"] == "replayed"
    assert receipt == {
        "message_id": losing.lost[0]["message_id"],
        "case_ref": "case-xgop3pmmk6ao57zqkk6egtnbdm",
        "leaf_index": None,
        "logged_at": None,
        "tree_size": None,
        "checkpoint": None,
    }
    assert losing.sent[1] == losing.sent[0]
    assert outbox(caw, receipt["message_id"])[0] == "sent"
    record = sent_record(caw, "case-xgop3pmmk6ao57zqkk6egtnbdm")
    assert (record["leaf_index"], record["logged_at"]) == (-1, -1)
    assert counts(caw)[:2] == before[:2]  # nothing pending, nothing failed
    assert received(coord, receipt["message_id"])["case_ref"] == "case-xgop3pmmk6ao57zqkk6egtnbdm"


# The cache itself, on a real store: what it hands out is recent, valid and verified again.
@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[tuple[KeyCell, GatewayStore, PeerPrekeys]]:
    keys = KeyCell.build()
    store = GatewayStore(tmp_path / "gateway.sqlite3")
    await store.open()
    async with aiohttp.ClientSession() as session:
        # Never called: ``cached`` answers without the hub (nothing listens on port 9).
        client = HubClient(
            "http://127.0.0.1:9",
            "caw",
            keys.identity("caw"),
            session,
            hub=HubBinding(CELL_ID, default_origin(CELL_ID)),
        )
        try:
            yield keys, store, PeerPrekeys(store, client, Suite.XWING)
        finally:
            await store.close()


def long_prekey(keys: KeyCell, owner: str, signer: str, days: int = 20) -> tuple[bytes, int]:
    """A prekey statement of ``owner`` valid for ``days`` from NOW - 1 day, signed by
    ``signer``'s identity key (the owner's own, unless forged)."""
    statement = PrekeyStatement(
        owner,
        keys.identity(signer).key_id,
        keys[owner].prekey(Suite.XWING),
        NOW - DAY,
        NOW + days * DAY,
    )
    return statement.sign(keys.identity(signer)), statement.not_after


async def test_a_cached_prekey_is_used_only_while_recent(
    cache: tuple[KeyCell, GatewayStore, PeerPrekeys],
) -> None:
    keys, store, peers = cache
    signed, not_after = long_prekey(keys, "clb", "clb")
    await store.cache_peer_prekeys(
        [("clb", keys["clb"].prekey(Suite.XWING).key_id, signed, not_after)], NOW
    )
    fresh = await peers.cached(keys.directory, ["clb"], NOW + PREKEY_CACHE_MAX_AGE)
    assert [s for _, s in fresh["clb"]] == [signed]
    stale = await peers.cached(keys.directory, ["clb"], NOW + PREKEY_CACHE_MAX_AGE + 1)
    assert stale == {"clb": []}  # still inside its window, but fetched too long ago
    # Seen at the hub again: recent again.
    await store.cache_peer_prekeys(
        [("clb", keys["clb"].prekey(Suite.XWING).key_id, signed, not_after)], NOW + 2 * DAY
    )
    again = await peers.cached(keys.directory, ["clb"], NOW + PREKEY_CACHE_MAX_AGE + 1)
    assert [s for _, s in again["clb"]] == [signed]


async def test_a_cached_prekey_is_verified_again_at_use(
    cache: tuple[KeyCell, GatewayStore, PeerPrekeys],
) -> None:
    keys, store, peers = cache
    forged, not_after = long_prekey(keys, "clb", "caw")  # names clb, signed by caw
    await store.cache_peer_prekeys([("clb", b"\x01" * 16, forged, not_after)], NOW)
    assert await peers.cached(keys.directory, ["clb"], NOW) == {"clb": []}
    signed, not_after = long_prekey(keys, "clb", "clb")
    await store.cache_peer_prekeys([("clb", b"\x02" * 16, signed, not_after)], NOW)
    assert [s for _, s in (await peers.cached(keys.directory, ["clb"], NOW))["clb"]] == [signed]
    # Revoked since it was cached: the directory of the moment decides.
    revoked = keys.directory_with(revocations=[keys.revocation("clb", NOW + 60)])
    with pytest.raises(KeyRevoked):
        await peers.cached(revoked, ["clb"], NOW + 60)


def test_a_hub_with_its_own_origin_serves_gateways_told_that_origin(tmp_path: Path) -> None:
    """A hub configured with a custom log origin: gateways configured with it sign their
    requests for it and accept its checkpoints; a message goes through, nobody halts (§10.3)."""
    origin = "hub.gent.example/livcr"
    cell = GatewayCell.create(
        tmp_path, {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER}, origin=origin
    )
    try:
        assert cell.config("caw").log_origin == origin
        running = RunningGateways(cell, ["coord", "caw"])
        try:
            sent = send(running["caw"], case_ref("origin"), ["coord"], 201)
            assert sent["checkpoint"].startswith(origin + "\n")
            message = received(running["coord"], sent["message_id"])
            assert message["sender_id"] == "caw"
            for name in ("caw", "coord"):
                assert call(running[name], "GET", "/v1/status", 200)["halted"] is None
        finally:
            running.close()
    finally:
        cell.hub.stop()
