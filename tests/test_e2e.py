"""End to end: the hub and the gateways as real processes, driven over their HTTP APIs.

The whole case of `make demo`; a gateway killed with SIGKILL while sending; a hub killed and
restarted under connected gateways; bodies with a field their purpose does not allow, refused
before sealing and after opening; and gateways that refuse a directory their root key did not
sign or a log that forked, saying why.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from cellproc import (
    CELL,
    GATEWAY_PASSPHRASE,
    KBO,
    ApiError,
    Cell,
    GatewayProcess,
    duplicates,
    wait_listening,
)
from hubproc import free_port
from waiting import wait_until

from gateway.setup import init_gateway
from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.cases import mint_case_ref
from livcr_exchange.envelope import MessageSpec, seal
from livcr_exchange.keyfile import unlock
from livcr_exchange.keys import IdentityKey, IdentityPublicKey
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE, decode_body
from livcr_exchange.request_auth import HubBinding
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubClient
from livcr_exchange.statements import DirectoryEntry, PrekeyStatement

ROOT = Path(__file__).resolve().parent.parent
DAY = 86_400
ROLES = {
    "coord": Role.COORDINATOR,
    "io-politie": Role.IO_POLITIE,
    "caw": Role.DEELNEMER,
    "clb": Role.DEELNEMER,
}


def body(tag: str, **changes: Any) -> dict[str, Any]:
    """The fictitious example body of ``tag`` as JSON, with ``changes``, still valid."""
    data: dict[str, Any] = msgspec.to_builtins(example_body(tag), order="deterministic")
    data.update(msgspec.to_builtins(changes))
    decode_body(tag, json.dumps(data).encode())
    return data


def new_case() -> str:
    return mint_case_ref(os.urandom)


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module while the class is made
    examples = str(ROOT / "examples")
    sys.path.insert(0, examples)  # as when it runs as a script: its helper modules beside it
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(examples)
    return module


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cell]:
    """A running cell shared by the robustness tests; each test works on its own case."""
    cell = Cell(tmp_path_factory.mktemp("cell"), ROLES)
    try:
        cell.start()
        yield cell
    finally:
        cell.stop()


# The whole case.
def test_whole_case_over_http(tmp_path: Path) -> None:
    """`examples/networked_cell.py`'s scenario, whose every step checks itself, then what each
    dossier and the hub's log hold at the end."""
    demo = load_example("networked_cell")
    demo_cell = demo.Cell(tmp_path)
    try:
        demo_cell.create()
        demo_cell.start()
        scenario = demo.Scenario(demo_cell)
        scenario.run()
        scenario.hub_view()
        scenario.verify_log()
        scenario.search_plaintext()
        audit = demo_cell.livcr(
            "hub", "audit", "export", "--config", str(demo_cell.hub_config), "--case", scenario.case
        )
        dossiers = {pid: s.dossier(scenario.case) for pid, s in demo_cell.services.items()}
    finally:
        demo_cell.stop()

    assert [s.purpose for s in scenario.sent] == [
        "aanmelding",
        "terugkoppeling_aanmelder",
        "screening_vraag",
        *["screening_antwoord"] * 4,
        "uitnodiging_overleg",
        *["casusinfo_overleg"] * 3,
        "verslag_besluit",
        "actieplan",
        "opvolgingsrapport",
        "terugkoppelingsfiche",
        "afsluiting",
        "terugkoppeling_aanmelder",
    ]
    assert [(sender, code) for sender, _, code, _ in scenario.refusals] == [
        ("coord", "recipient_not_allowed"),  # minutes to a member absent from the meeting
        ("coord", "cosignature_invalid"),  # the fiche without the CLB's co-signature
        ("coord", "recipient_not_allowed"),  # the closure to the revoked OCMW
        ("ocmw", "key_revoked"),  # the revoked OCMW itself
    ]
    # Each recipient holds each message exactly once; nobody else holds it.
    for pid, records in dossiers.items():
        assert duplicates(records) == [], pid
        received = {r["message_id"] for r in records if r["direction"] == "received"}
        for sent in scenario.sent:
            assert (sent.message_id in received) == (pid in sent.recipients), (pid, sent)
    # The minutes' PDF: opened by the three members present, by nobody else.
    assert len(scenario.opened) == 3
    confirmations = [r for r in dossiers["coord"] if r["purpose"] == "wissingsbevestiging"]
    assert sorted(r["sender"] for r in confirmations) == ["caw", "clb", "io-politie"]
    # The hub logged every accepted envelope of the case (the demo's own plus the three
    # confirmations the gateways sent by themselves), and nothing else about its content.
    leaves = [json.loads(line) for line in audit.stdout.splitlines()]
    accepted = [r for r in leaves if r["type"] == "EnvelopeAccepted"]
    assert len(accepted) == len(scenario.sent) + 3
    assert all(set(r) <= HUB_LEAF_FIELDS for r in leaves)


HUB_LEAF_FIELDS = {
    "index",
    "leaf_hash",
    "type",
    "logged_at",
    "salt",  # the leaf's random salt (spec §10.4): an auditor recomputes the leaf hash with it
    "message_id",
    "sender_id",
    "purpose",
    "case_ref",
    "recipients",
    "envelope_hash",
    "size",
    "actor_id",
    "from_state",
    "to_state",
    "reason",
    "added",
    "removed",
    "meeting_ref",
    "present",
}


# Bodies a purpose does not allow.
def test_body_with_an_unknown_field_is_refused_before_sealing(cell: Cell) -> None:
    caw, coord = cell["caw"], cell["coord"]
    case_ref = new_case()
    referral = body("aanmelding") | {"nickname": "Sammy"}
    before = caw.api.get("/v1/status")
    with pytest.raises(ApiError) as refused:
        caw.api.send(case_ref, "aanmelding", ["coord"], referral)
    assert (refused.value.status, refused.value.code) == (422, "body_schema_violation")
    assert "nickname" in refused.value.detail
    after = caw.api.get("/v1/status")
    assert after["dossier_records"] == before["dossier_records"]
    assert after["outbox_pending"] == after["outbox_failed"] == 0
    assert caw.query("SELECT COUNT(*) FROM outbox WHERE case_ref = ?", case_ref) == [(0,)]
    assert cell.hub_query("SELECT COUNT(*) FROM leaves WHERE case_ref = ?", case_ref) == [(0,)]
    assert cell.hub_query("SELECT COUNT(*) FROM cases WHERE case_ref = ?", case_ref) == [(0,)]
    assert coord.dossier(case_ref) == []


def test_body_with_an_unknown_field_is_refused_after_opening(cell: Cell) -> None:
    """A sender that skips its gateway's check: the recipient's gateway refuses the body."""
    coord = cell["coord"]
    case_ref = new_case()
    referral = body("aanmelding") | {"nickname": "Sammy"}
    message_id = asyncio.run(submit_around_the_gateway(cell, "caw", "coord", case_ref, referral))
    deadline = time.monotonic() + 15
    while not coord.query("SELECT code FROM quarantine WHERE message_id = ?", message_id):
        assert time.monotonic() < deadline, coord.log()[-2000:]
        time.sleep(0.05)
    assert coord.query("SELECT code FROM quarantine WHERE message_id = ?", message_id) == [
        ("body_schema_violation",)
    ]
    assert coord.dossier(case_ref) == []
    assert message_id.hex() not in {m["message_id"] for m in coord.receive(wait=0)}
    assert coord.query("SELECT COUNT(*) FROM dossier WHERE message_id = ?", message_id) == [(0,)]
    # The hub held the envelope (it cannot see the body); the gateway acknowledged it, so the
    # hub dropped it: a refused body is not redelivered forever.
    assert cell.hub_query("SELECT COUNT(*) FROM leaves WHERE case_ref = ?", case_ref) != [(0,)]
    deadline = time.monotonic() + 10
    while cell.hub_query("SELECT COUNT(*) FROM deliveries WHERE message_id = ?", message_id) != [
        (0,)
    ]:
        assert time.monotonic() < deadline, "the refused envelope was never acknowledged"
        time.sleep(0.05)


async def submit_around_the_gateway(
    cell: Cell, sender: str, recipient: str, case_ref: str, raw: dict[str, Any]
) -> bytes:
    """Seal ``raw`` with the library and submit it as ``sender``, without its gateway."""
    secret = (cell[sender].folder / "identity.secret").read_bytes()
    identity = unlock(secret, GATEWAY_PASSPHRASE.encode()).identity
    root = IdentityPublicKey.from_text(cell.root_key)
    now = int(time.time())
    async with aiohttp.ClientSession() as session:
        client = HubClient(
            cell.hub.url, sender, identity, session, hub=HubBinding(CELL, default_origin(CELL))
        )
        listing = await client.directory()
        entries = [DirectoryEntry.open(e, root) for e in listing.entries]
        recipient_key = next(e for e in entries if e.participant_id == recipient).identity_key
        offered = (await client.prekeys([recipient]))[recipient]
        statements = [PrekeyStatement.open(s, recipient_key) for s in offered]
        current = [s for s in statements if s.not_before <= now < s.not_after]
        prekey = max(current, key=lambda s: s.not_before).prekey
        spec = MessageSpec(CELL, sender, "aanmelding", case_ref, {recipient: prekey}, prekey.suite)
        raw_body = json.dumps(raw).encode()
        envelope = seal(identity, spec, raw_body, now=now, ttl=DAY, random=os.urandom)
        receipt = await client.submit(envelope)
    return bytes.fromhex(receipt.receipt.message_id)


# Crashes and restarts.
@pytest.fixture
def swallow_proxy(
    cell: Cell, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """A proxy to the cell's hub that can swallow the hub's answers to submissions."""
    port, state = free_port(), tmp_path / "swallowed"
    state.touch()
    with (tmp_path / "proxy.log").open("ab") as log:
        proxy = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).parent / "swallow_proxy.py"),
                cell.hub.url,
                str(port),
                str(state),
            ],
            stdout=log,
            stderr=log,
        )
    try:
        wait_listening(proxy, port, "the proxy")
        yield f"http://127.0.0.1:{port}", proxy, state
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def test_gateway_killed_while_sending_delivers_after_restart(
    cell: Cell, swallow_proxy: tuple[str, subprocess.Popen[bytes], Path]
) -> None:
    """The hub commits a submission whose answer never arrives; the sender is killed with its
    outbox holding that message and one more. Restarted, it delivers both, nothing twice."""
    proxy_url, proxy, swallowed = swallow_proxy
    sender = cell.add_gateway("ocmw", Role.DEELNEMER, hub_url=proxy_url)
    try:
        sending_through_a_proxy_that_swallows(cell, sender, proxy, swallowed)
    finally:
        sender.stop()


def sending_through_a_proxy_that_swallows(
    cell: Cell, sender: GatewayProcess, proxy: subprocess.Popen[bytes], swallowed: Path
) -> None:
    coord = cell["coord"]
    sender.start(connected=False)  # its push stream is not proxied: it only sends here
    case_ref = new_case()
    first = sender.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"))
    proxy.send_signal(signal.SIGUSR1)
    second = sender.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"), wait=False)
    deadline = time.monotonic() + 10
    while not swallowed.read_text():
        assert time.monotonic() < deadline, "the submission never reached the hub"
        time.sleep(0.02)
    third = sender.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"), wait=False)
    sender.kill()

    ids = [m["message_id"] for m in (first, second, third)]
    outbox = dict(sender.query("SELECT hex(message_id), state FROM outbox"))
    assert {k.lower(): v for k, v in outbox.items()} == {
        ids[0]: "sent",
        ids[1]: "pending",  # committed by the hub, but the gateway never heard so
        ids[2]: "pending",  # never attempted
    }
    assert cell.hub_query(
        "SELECT COUNT(*) FROM seen WHERE message_id = ?", bytes.fromhex(ids[1])
    ) == [(1,)]
    assert cell.hub_query(
        "SELECT COUNT(*) FROM seen WHERE message_id = ?", bytes.fromhex(ids[2])
    ) == [(0,)]

    proxy.send_signal(signal.SIGUSR2)
    sender.start(connected=False)
    status = sender.wait_status(lambda s: s["outbox_pending"] == 0, timeout=20)
    assert status["outbox_failed"] == 0, sender.query("SELECT state, last_error FROM outbox")
    coord.wait_for(ids)
    for gateway in (sender, coord):
        records = gateway.dossier(case_ref)
        assert duplicates(records) == []
        assert sorted(r["message_id"] for r in records) == sorted(ids), gateway.participant_id
    assert [r["direction"] for r in sender.dossier(case_ref)] == ["sent"] * 3
    assert all(r["body"] is not None for r in sender.dossier(case_ref))
    # The swallowed one went again as it was, and the hub answered with its receipt (§9.3).
    logged = {r["message_id"]: r["leaf_index"] for r in sender.dossier(case_ref)}
    ((receipt,),) = sender.query(
        "SELECT receipt FROM outbox WHERE message_id = ?", bytes.fromhex(ids[1])
    )
    assert json.loads(receipt)["inclusion_proof"]
    assert cell.hub_query(
        "SELECT leaf_index FROM seen WHERE message_id = ?", bytes.fromhex(ids[1])
    ) == [(logged[ids[1]],)]
    assert cell.hub_query(
        "SELECT COUNT(*) FROM leaves WHERE case_ref = ? AND data IS NOT NULL", case_ref
    ) == [(4,)]  # three envelopes accepted once each, and the case opened


def test_hub_restart_under_connected_gateways_loses_nothing(cell: Cell) -> None:
    """The hub is killed (SIGKILL) with a delivery unacknowledged and submissions in flight;
    after its restart every gateway reconnects and every accepted message arrives once."""
    caw, coord = cell["caw"], cell["coord"]
    case_ref = new_case()
    accepted = [caw.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"))["message_id"]]
    coord.wait_for(accepted)
    coord.freeze()  # connected, but it neither reads its stream nor acknowledges
    accepted.append(
        caw.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"))["message_id"]
    )
    for _ in range(5):
        queued = caw.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"), wait=False)
        accepted.append(queued["message_id"])
    cell.hub.kill()
    try:
        for gateway in (caw, cell["clb"], cell["io-politie"]):
            gateway.wait_status(lambda s: s["connected"] is False, timeout=10)
        with pytest.raises(ApiError) as refused:
            caw.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"))
        assert (refused.value.status, refused.value.code) == (503, "hub_unavailable")
    finally:
        cell.hub.start()
        coord.thaw()
    for gateway in cell.gateways.values():
        if gateway.process is not None and gateway.process.poll() is None:
            gateway.wait_status(lambda s: s["connected"] is True, timeout=15)
    accepted.append(
        caw.api.send(case_ref, "aanmelding", ["coord"], body("aanmelding"))["message_id"]
    )
    coord.wait_for(accepted, timeout=30)
    caw.wait_status(lambda s: s["outbox_pending"] == 0 and s["outbox_failed"] == 0)
    for gateway in (caw, coord):
        records = gateway.dossier(case_ref)
        assert duplicates(records) == []
        assert sorted(r["message_id"] for r in records) == sorted(accepted)
    assert cell.verify_log().ok


# Trust.
def test_gateway_refuses_a_hub_serving_another_root(cell: Cell) -> None:
    """An enrolled gateway whose configuration names another root key than the one the hub's
    directory is signed with will not start, and says so."""
    stranger = IdentityKey.from_seed(os.urandom(32)).public.to_text()
    folder, _, bundle = cell.new_gateway_folder("stranger", root_key=stranger)
    cell.enrol(json.loads(bundle.read_text()), Role.DEELNEMER)
    result = serve_once(folder / "gateway.toml")
    assert result.returncode != 0
    assert "the gateway did not start" in result.stderr
    assert f"not the cell {CELL!r} this gateway was enrolled in" in result.stderr
    assert cell.root_key in result.stderr


def serve_once(config: Path) -> subprocess.CompletedProcess[str]:
    """`livcr gateway serve` expected to stop on its own."""
    return subprocess.run(
        [sys.executable, "-m", "livcr_cli", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "LIVCR_PASSPHRASE": GATEWAY_PASSPHRASE},
        timeout=30,
        check=False,
    )


async def test_gateway_refuses_entries_not_signed_by_its_root(tmp_path: Path) -> None:
    """A hub that names the right root but serves entries another key signed is not believed."""
    root, impostor = (IdentityKey.from_seed(os.urandom(32)) for _ in range(2))
    now = int(time.time())
    forged = DirectoryEntry(
        CELL,
        "coord",
        KBO,
        Role.COORDINATOR,
        IdentityKey.from_seed(os.urandom(32)).public,
        frozenset(CATALOGUE),
        now - DAY,
        now + DAY,
    ).sign(impostor)

    async def directory(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "cell_id": CELL,
                "root_key": root.public.to_text(),
                "entries": [base64.b64encode(forged).decode()],
                "revocations": [],
            }
        )

    app = web.Application()
    app.router.add_get("/v1/directory", directory)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        folder = tmp_path / "gw"
        await asyncio.to_thread(
            init_gateway,
            folder,
            participant_id="coord",
            cell_id=CELL,
            root_key=root.public.to_text(),
            hub_url=f"http://127.0.0.1:{port}",
            hub_log_key=impostor.public.to_text(),
            passphrase=GATEWAY_PASSPHRASE.encode(),
            now=now,
            api_port=free_port(),
            key_cost=(1, 8192),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "livcr_cli",
            "gateway",
            "serve",
            "--config",
            str(folder / "gateway.toml"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "LIVCR_PASSPHRASE": GATEWAY_PASSPHRASE},
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await runner.cleanup()
    assert process.returncode != 0
    assert "does not verify against the root key" in stderr.decode()


def test_gateway_halts_on_a_log_that_forks(tmp_path: Path) -> None:
    """The hub's store is rolled back, then rewritten, after the gateways saw a checkpoint.

    A running gateway halts (status ``halted``, sending refused, nothing more accepted or
    acknowledged: the hub keeps it queued); a restarted one refuses to start; both say the log
    is not consistent with what they saw.
    """
    roles = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER}
    forked = Cell(tmp_path, roles, maintenance_interval_seconds=1.0)  # they check every second
    store = forked.hub.directory / "hub.sqlite3"
    snapshot = tmp_path / "snapshot.sqlite3"
    try:
        forked.start()
        _backup(store, snapshot)
        coord, caw = forked["coord"], forked["caw"]
        sent = [
            caw.api.send(new_case(), "aanmelding", ["coord"], body("aanmelding"))["message_id"]
            for _ in range(3)
        ]
        coord.wait_for(sent)
        size = forked.hub_query("SELECT COUNT(*) FROM leaves")[0][0]
        seen = _observed(coord, size)  # each gateway's maintenance fetched a checkpoint
        caw_seen = _observed(caw, size)
        caw.stop()

        # Roll back: the hub restarts on an older copy of its store.
        forked.hub.stop()
        _replace_store(store, snapshot)
        forked.hub.start()
        status = coord.wait_status(lambda s: s["halted"] is not None, timeout=15)
        found = re.match(
            rf"checkpoint (\d+) is not consistent with checkpoint {seen}: the hub cannot prove it",
            status["halted"],
        )
        assert found is not None, status["halted"]
        assert int(found[1]) < seen  # a smaller log than the one the hub signed before
        with pytest.raises(ApiError) as refused:
            coord.api.send(new_case(), "screening_vraag", ["caw"], body("screening_vraag"))
        assert (refused.value.status, refused.value.code) == (503, "halted")
        # Nor does it take anything more from that hub: its push stream is closed for good (the
        # loop that follows and reopens it has ended), and what the hub holds for it stays
        # queued there, unacknowledged.
        wait_until(
            lambda: "push stream closed: the gateway is halted" in coord.log(),
            "the halted gateway to end its push stream",
        )
        waiting = asyncio.run(
            submit_around_the_gateway(forked, "caw", "coord", new_case(), body("aanmelding"))
        )
        assert forked.hub_query(
            "SELECT COUNT(*) FROM deliveries WHERE message_id = ?", waiting
        ) == [(1,)]
        assert coord.query("SELECT COUNT(*) FROM dossier WHERE message_id = ?", waiting) == [(0,)]
        assert coord.query("SELECT COUNT(*) FROM quarantine WHERE message_id = ?", waiting) == [
            (0,)
        ]
        later = coord.wait_status(lambda s: s["connected"] is False, timeout=10)
        assert later["halted"] == status["halted"]

        # Rewrite: the rolled-back store grows past what the gateways saw, with other leaves.
        forked.hub.stop()
        while forked.hub_query("SELECT COUNT(*) FROM leaves")[0][0] <= caw_seen:
            _, _, filler = forked.new_gateway_folder(f"filler-{os.urandom(3).hex()}")
            forked.enrol(json.loads(filler.read_text()), Role.DEELNEMER)
        forked.hub.start()
        result = serve_once(caw.config_path)
        assert result.returncode != 0
        found = re.search(
            rf"the gateway did not start: checkpoint (\d+) is not consistent with checkpoint"
            rf" {caw_seen}: ",
            result.stderr,
        )
        assert found is not None, result.stderr
        assert int(found[1]) > caw_seen  # a longer log that does not extend the one it saw
    finally:
        forked.stop()


def _observed(gateway: GatewayProcess, size: int) -> int:
    """Wait until ``gateway`` has checked a checkpoint of at least ``size``; return the largest."""
    deadline = time.monotonic() + 10
    while True:
        largest = max(n for (n,) in gateway.query("SELECT size FROM checkpoints"))
        if largest >= size:
            return int(largest)
        assert time.monotonic() < deadline, f"{gateway.participant_id} saw only {largest}"
        time.sleep(0.1)


def _backup(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite store."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _replace_store(store: Path, snapshot: Path) -> None:
    for suffix in ("-wal", "-shm"):
        store.with_name(store.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(snapshot, store)
