"""Several `livcr hub serve` processes on one PostgreSQL database.

Three processes share a cell's store. Senders submit to all of them at once; a coordinator
listens on one process's WebSocket, and both coordinators drain their inboxes through all of
them. The tests show: every envelope reaches each recipient's inbox (and socket) exactly once,
the log is one log (`livcr hub log verify`, byte-identical checkpoints from every process), a
request replayed to another process is refused, an envelope sent to every process is accepted
once (the others answer with its receipt), and SIGKILL of one process in the middle of the load
loses nothing that was acknowledged while the others keep serving.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from factories import case_ref
from hubproc import HubProcess
from pgdb import fresh_database

from livcr_cli import main
from livcr_exchange.audit.leaves import delivery_receipt_message, envelope_hash
from livcr_exchange.envelope import UnverifiedEnvelope
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubClient, HubRefused

ROLES = {
    "coord-a": Role.COORDINATOR,
    "coord-b": Role.COORDINATOR,
    "caw": Role.DEELNEMER,
    "clb": Role.DEELNEMER,
}
COORDINATORS = ["coord-a", "coord-b"]
PER_SENDER = 60
WORKERS = 8
TIMEOUT = aiohttp.ClientTimeout(total=10)


def start_all(hubs: list[HubProcess]) -> None:
    with ThreadPoolExecutor(len(hubs)) as pool:
        list(pool.map(lambda hub: hub.start(), hubs))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[HubProcess]]:
    """Three hub processes serving one cell from one PostgreSQL database."""
    with fresh_database() as dsn:
        first = HubProcess.create(tmp_path_factory.mktemp("pg") / "cell", ROLES, dsn=dsn)
        hubs = [first, first.replica(), first.replica()]
        start_all(hubs)
        try:
            yield hubs
        finally:
            for hub in hubs:
                hub.stop()


def sealed(hub: HubProcess, sender: str, n: int) -> bytes:
    return hub.seal(sender, COORDINATORS, b'{"n": %d}' % n, "aanmelding", case_ref(sender))


def log_verify(hub: HubProcess) -> str:
    result = CliRunner().invoke(main, ["hub", "log", "verify", "--config", str(hub.config_path)])
    assert result.exit_code == 0, result.output
    assert "log verified" in result.output
    return result.output


async def checkpoints(hubs: list[HubProcess], session: aiohttp.ClientSession) -> list[bytes]:
    return [await hub.client("coord-a", session).checkpoint() for hub in hubs]


async def drain(
    hubs: list[HubProcess], participant: str, session: aiohttp.ClientSession
) -> list[bytes]:
    """Fetch and acknowledge everything waiting, each page from the next process and each ack
    through the one after it. Returns the message ids in the order received."""
    member = hubs[0].members[participant]
    received: list[bytes] = []
    turn = 0
    while True:
        client = hubs[turn % len(hubs)].client(participant, session)
        page = await client.inbox(limit=40)
        if not page["deliveries"]:
            return received
        receipts = []
        for item in page["deliveries"]:
            message_id = bytes.fromhex(item["message_id"])
            digest = envelope_hash(await client.fetch_envelope(item["message_id"]))
            at = int(time.time())
            signature = member.identity.sign(
                delivery_receipt_message(message_id, digest, participant, at)
            )
            receipts.append((message_id, at, signature))
            received.append(message_id)
        answer = await hubs[(turn + 1) % len(hubs)].client(participant, session).ack(receipts)
        assert answer["acknowledged"] == len(receipts)
        turn += 1


async def listen(socket: aiohttp.ClientWebSocketResponse, want: int, into: list[bytes]) -> None:
    """Collect pushed message ids until ``want`` distinct ones came."""
    while len(set(into)) < want:
        frame = await socket.receive_json()
        if frame.get("type") == "delivery":
            into.append(bytes.fromhex(frame["message_id"]))


async def listen_past(
    socket: aiohttp.ClientWebSocketResponse, marker: bytes, into: list[bytes]
) -> None:
    """Collect pushed message ids until ``marker`` came. The marker is committed after every
    other envelope, and its notice follows theirs on the one channel the process listens on, so
    a duplicate push of an earlier envelope comes before it: this is the window in which a
    duplicate would show, bounded by an event rather than by a pause."""
    while marker not in into:
        frame = await socket.receive_json()
        if frame.get("type") == "delivery":
            into.append(bytes.fromhex(frame["message_id"]))


async def connect(client: HubClient) -> aiohttp.ClientWebSocketResponse:
    socket = await client.stream()
    while (await socket.receive_json()).get("type") != "caught_up":
        pass
    return socket


def test_every_envelope_reaches_each_inbox_exactly_once(cluster: list[HubProcess]) -> None:
    hubs = cluster
    work = [(s, sealed(hubs[0], s, n)) for n in range(PER_SENDER) for s in ("caw", "clb")]

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            socket = await connect(hubs[1].client("coord-a", session))
            pushed: list[bytes] = []
            listener = asyncio.create_task(listen(socket, len(work), pushed))
            queue = list(enumerate(work))
            receipts: list[dict[str, Any]] = []

            async def worker() -> None:
                while queue:
                    n, (sender, envelope) = queue.pop()
                    client = hubs[n % len(hubs)].client(sender, session)
                    receipts.append(await client.submit(envelope))

            await asyncio.gather(*(worker() for _ in range(WORKERS)))
            await asyncio.wait_for(listener, 30)
            marker = await hubs[2].client("caw", session).submit(sealed(hubs[0], "caw", -1))
            receipts.append(marker)
            await asyncio.wait_for(
                listen_past(socket, bytes.fromhex(marker["message_id"]), pushed), 30
            )
            await socket.close()
            inboxes = {c: await drain(hubs, c, session) for c in COORDINATORS}
            left = [await h.client(c, session).inbox() for h in hubs for c in COORDINATORS]
            return {
                "receipts": receipts,
                "pushed": pushed,
                "inboxes": inboxes,
                "left": left,
                "checkpoints": await checkpoints(hubs, session),
            }

    outcome = asyncio.run(scenario())
    submitted = {bytes.fromhex(r["message_id"]) for r in outcome["receipts"]}
    assert len(submitted) == len(work) + 1  # and the marker
    indexes = [r["leaf_index"] for r in outcome["receipts"]]
    assert len(set(indexes)) == len(indexes), "two envelopes share a log index"
    assert Counter(outcome["pushed"]) == Counter(submitted), "a push was lost or duplicated"
    for coordinator, received in outcome["inboxes"].items():
        assert Counter(received) == Counter(submitted), f"{coordinator}: not exactly once"
    assert all(not page["deliveries"] for page in outcome["left"])
    first, *others = outcome["checkpoints"]
    assert all(note == first for note in others), "processes serve different checkpoints"
    size = int(first.split(b"\n")[1])
    assert size > max(indexes)
    assert f"{size} leaves" in log_verify(hubs[0])


def test_a_replayed_request_is_refused_by_every_process(cluster: list[HubProcess]) -> None:
    hub = cluster[0]

    async def scenario() -> list[int]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            client = hub.client("caw", session)
            headers = client.signed_headers("GET", "/v1/inbox", "", b"")
            statuses = []
            for target in (cluster[0], cluster[1], cluster[2], cluster[0]):
                async with session.get(f"{target.url}/v1/inbox", headers=headers) as response:
                    statuses.append(response.status)
                    if response.status != 200:
                        assert (await response.json())["code"] == "replayed"
            return statuses

    assert asyncio.run(scenario()) == [200, 409, 409, 409]


def test_an_envelope_sent_to_every_process_is_accepted_once(cluster: list[HubProcess]) -> None:
    """One process commits it; the others, finding the same bytes accepted, answer with that
    same receipt (spec §9.3): one leaf, one leaf index."""
    envelope = sealed(cluster[0], "caw", 10_000)

    async def scenario() -> list[Any]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            return await asyncio.gather(
                *(h.client("caw", session).submit(envelope) for h in cluster),
                return_exceptions=True,
            )

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, dict) for o in outcomes), outcomes
    assert len({o["leaf_index"] for o in outcomes}) == 1


def test_case_changes_through_every_process_are_all_kept(cluster: list[HubProcess]) -> None:
    """Meetings recorded at once through all three processes: each is a read-modify-write of
    the case record, and none may overwrite another's (the store's case registry lock)."""
    meetings = [f"meeting-{n}" for n in range(24)]

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            clients = [hub.client("coord-a", session) for hub in cluster]
            await clients[0].open_case("case-wqxym77u5d5bokhu6ceatadtga", ["caw", "clb"])
            await asyncio.gather(
                *(
                    clients[n % len(clients)].record_meeting(
                        "case-wqxym77u5d5bokhu6ceatadtga", ref, ["caw"]
                    )
                    for n, ref in enumerate(meetings)
                )
            )
            return await clients[1].case("case-wqxym77u5d5bokhu6ceatadtga")

    case = asyncio.run(scenario())
    assert sorted(case["meetings"]) == sorted(meetings)
    log_verify(cluster[2])


KILL_TOTAL = 300
KILL_AFTER = 100


@pytest.mark.parametrize(
    ("total", "kill_after"),
    [
        pytest.param(KILL_TOTAL, KILL_AFTER, id="300"),
        pytest.param(3000, 1500, id="soak-3000", marks=pytest.mark.slow),
    ],
)
def test_sigkill_of_one_process_loses_nothing_acknowledged(
    tmp_path: Path, total: int, kill_after: int
) -> None:
    with fresh_database() as dsn:
        first = HubProcess.create(tmp_path / "cell", ROLES, dsn=dsn)
        hubs = [first, first.replica(), first.replica()]
        start_all(hubs)
        try:
            run_kill_scenario(hubs, total, kill_after)
        finally:
            for hub in hubs:
                hub.stop()


def run_kill_scenario(hubs: list[HubProcess], total: int, kill_after: int) -> None:
    victim = hubs[0]
    envelopes = [sealed(victim, "caw", n) for n in range(total)]
    acknowledged: set[bytes] = set()
    replayed: set[bytes] = set()
    refusals: list[str] = []
    after_kill = 0
    killed_at: float | None = None

    async def load(session: aiohttp.ClientSession) -> None:
        nonlocal after_kill, killed_at
        queue = list(enumerate(envelopes))

        async def worker() -> None:
            nonlocal after_kill, killed_at
            while queue:
                n, envelope = queue.pop(0)
                for attempt in range(len(hubs)):  # the same envelope, to the next process
                    hub = hubs[(n + attempt) % len(hubs)]
                    try:
                        receipt = await hub.client("caw", session).submit(envelope)
                    except HubRefused as exc:  # only a replay: a landed one gets its receipt
                        refusals.append(exc.code)
                        replayed.add(UnverifiedEnvelope.parse(envelope).message_id)
                        break
                    except (TimeoutError, aiohttp.ClientError):
                        continue
                    acknowledged.add(bytes.fromhex(receipt["message_id"]))
                    if killed_at is not None:
                        after_kill += 1
                    if len(acknowledged) == kill_after:
                        victim.kill()
                        killed_at = time.monotonic()
                    break

        await asyncio.gather(*(worker() for _ in range(9)))

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            await load(session)
            drained = await drain(hubs[1:], "coord-a", session)
            victim.start()  # the killed process comes back and serves the same log
            notes = await checkpoints(hubs, session)
            return drained, notes

    drained, notes = asyncio.run(scenario())
    assert killed_at is not None
    assert set(refusals) <= {"replayed"}
    assert after_kill > 0, "the surviving processes stopped serving"
    assert acknowledged <= set(drained), "an acknowledged envelope was lost"
    assert len(drained) == len(set(drained)), "an envelope was queued twice"
    assert len(set(drained)) == total  # every envelope landed: acknowledged, or replayed
    assert notes[0] == notes[1] == notes[2]
    log_verify(hubs[1])
