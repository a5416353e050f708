"""A hub that shows two histories: the witness quorum cosigns one, the other side halts.

The hub here is a malicious stand-in that serves each gateway its own view of the log (chosen by
the requesting participant), collects cosignatures for each view with the hub's own collector
(hub.witnessing), and talks to three real witnesses (quorum 2). The gateways are real gateways
(gateway.core.Gateway) running their maintenance rounds by hand.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from gateway_harness import CELL_ID, CHEAP_KEYS, KBO, PASSPHRASE
from hubproc import free_port
from witnessproc import SigningLog

from gateway.config import load_config
from gateway.core import Gateway
from gateway.setup import init_gateway
from gateway.trust import TrustFailure
from gateway.witnessing import WITNESS_GRACE_ROUNDS
from hub.witnessing import CosignatureCollector
from livcr_exchange.audit.cosignature import WitnessKey
from livcr_exchange.keys import IdentityKey, IdentityPublicKey
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry
from livcr_exchange.witness_policy import WitnessPolicy
from witness.app import Witness, create_app
from witness.store import WitnessStore

DAY = 86_400
QUORUM = 2


@dataclass
class TwoFacedHub:
    """Serves ``views[participant]`` to each participant; ``cosigned_for`` may cross views."""

    listing: dict[str, object]
    views: dict[str, SigningLog]
    collectors: dict[str, CosignatureCollector] = field(default_factory=dict)
    cosigned_for: dict[str, str] = field(default_factory=dict)  # participant -> view owner

    def view(self, request: web.Request) -> SigningLog:
        return self.views[request.headers["Livcr-Participant"]]

    async def directory(self, _: web.Request) -> web.Response:
        return web.json_response(self.listing)

    async def checkpoint(self, request: web.Request) -> web.Response:
        view = self.view(request)
        return web.Response(body=view.note(view.size), content_type="text/plain")

    async def consistency(self, request: web.Request) -> web.Response:
        view = self.view(request)
        old, new = int(request.query["old"]), int(request.query["new"])
        if not 0 < old <= new <= view.size:
            return web.json_response(
                {"code": "malformed", "detail": "size out of range"}, status=400
            )
        proof = view.consistency(old, new)
        return web.json_response({"proof": [base64.b64encode(h).decode() for h in proof]})

    async def cosigned(self, request: web.Request) -> web.Response:
        participant = request.headers["Livcr-Participant"]
        owner = self.cosigned_for.get(participant, participant)
        note = self.collectors[owner].latest
        if note is None:
            return web.json_response({"code": "not_found", "detail": "none"}, status=404)
        return web.Response(body=note, content_type="text/plain")

    async def prekeys(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            return web.json_response({"stored": 0})
        return web.json_response({"prekeys": {}})

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/v1/directory", self.directory),
                web.get("/v1/log/checkpoint", self.checkpoint),
                web.get("/v1/log/consistency", self.consistency),
                web.get("/v1/log/cosigned", self.cosigned),
                web.put("/v1/prekeys", self.prekeys),
                web.get("/v1/prekeys", self.prekeys),
            ]
        )
        return app


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@dataclass
class Cell:
    base: SigningLog
    hub: TwoFacedHub
    gateways: dict[str, Path]
    urls: dict[WitnessKey, str]
    session: aiohttp.ClientSession

    def collector(self, owner: str, view: SigningLog) -> CosignatureCollector:
        collector = CosignatureCollector(view, self.session)
        self.hub.collectors[owner] = collector
        self.hub.views[owner] = view
        return collector


@dataclass
class Folders:
    """What exists before anything runs: keys, gateway folders, the signed directory."""

    base: SigningLog
    witness_keys: dict[str, IdentityKey]
    witness_ports: dict[str, int]
    hub_port: int
    listing: dict[str, object]
    gateways: dict[str, Path]


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    """Made outside the event loop: gateway init runs its own."""
    root = IdentityKey.from_seed(os.urandom(32))
    base = SigningLog(origin=f"livcr-exchange/{CELL_ID}")
    base.grow(10)
    keys = {name: IdentityKey.from_seed(os.urandom(32)) for name in ("w/a", "w/b", "w/c")}
    witnesses = tuple(WitnessKey(name, key.public.raw) for name, key in keys.items())
    policy = WitnessPolicy(CELL_ID, 1, QUORUM, witnesses)
    hub_port = free_port()
    now = int(time.time())
    entries = []
    gateways = {}
    for pid in ("caw", "clb"):
        bundle = init_gateway(
            tmp_path / pid,
            participant_id=pid,
            cell_id=CELL_ID,
            root_key=root.public.to_text(),
            hub_url=f"http://127.0.0.1:{hub_port}",
            hub_log_key=base.key.public.to_text(),
            passphrase=PASSPHRASE,
            now=now,
            key_cost=CHEAP_KEYS,
            api_port=free_port(),
        )
        identity = json.loads(bundle.read_text())["identity_key"]
        entry = DirectoryEntry(
            CELL_ID,
            pid,
            KBO,
            Role.DEELNEMER,
            IdentityPublicKey.from_text(identity),
            frozenset(),
            now - DAY,
            now + 30 * DAY,
        )
        entries.append(base64.b64encode(entry.sign(root)).decode())
        gateways[pid] = tmp_path / pid / "gateway.toml"
    listing: dict[str, object] = {
        "cell_id": CELL_ID,
        "root_key": root.public.to_text(),
        "entries": entries,
        "revocations": [],
        "witness_policy": base64.b64encode(policy.sign(root)).decode(),
    }
    ports = {name: free_port() for name in keys}
    return Folders(base, keys, ports, hub_port, listing, gateways)


@pytest.fixture
async def cell(folders: Folders, tmp_path: Path) -> AsyncIterator[Cell]:
    runners = []
    stores = []
    base = folders.base
    for name, key in folders.witness_keys.items():
        store = WitnessStore(tmp_path / f"{name.replace('/', '-')}.sqlite")
        stores.append(store)
        witness = Witness(name, key, {base.origin: base.log_key}, store)
        runners.append(await serve(create_app(witness), folders.witness_ports[name]))
    hub = TwoFacedHub(folders.listing, {})
    runners.append(await serve(hub.app(), folders.hub_port))
    urls = {
        WitnessKey(name, folders.witness_keys[name].public.raw): f"http://127.0.0.1:{port}"
        for name, port in folders.witness_ports.items()
    }
    try:
        async with aiohttp.ClientSession() as session:
            yield Cell(base, hub, folders.gateways, urls, session)
    finally:
        for runner in runners:
            await runner.cleanup()
        for store in stores:
            store.close()


@dataclass
class Outcome:
    halted: str | None
    rounds: int  # maintenance rounds run (opening runs the first), up to the halt
    witnessed_size: int


async def run_gateway(config_path: Path, rounds: int) -> Outcome:
    """Open the gateway (its first maintenance round) and run more rounds, as its background
    loop would, until it halts or ``rounds`` have run."""
    config = load_config(config_path)
    try:
        async with Gateway.open(config, passphrase=PASSPHRASE, background=False) as gateway:
            done = 1
            while gateway.halted is None and done < rounds:
                done += 1
                with contextlib.suppress(TrustFailure):  # maintain halted it and said why
                    await gateway.maintain()
            return Outcome(gateway.halted, done, gateway.witnesses.witnessed_size)
    except TrustFailure as exc:  # halted while opening: in its first round
        return Outcome(str(exc), 1, 0)


@pytest.mark.parametrize("cross", [False, True], ids=["nothing_cosigned", "other_branch"])
async def test_split_view_of_one_size(cell: Cell, cross: bool) -> None:
    other = cell.base.fork(6, 4)  # the same size, another history from leaf 6 on
    assert other.size == cell.base.size
    assert other.note(10) != cell.base.note(10)
    assert await cell.collector("caw", cell.base).collect(10, cell.urls, QUORUM) == 3
    # The witnesses cosigned the first view: they refuse the second (422).
    assert await cell.collector("clb", other).collect(10, cell.urls, QUORUM) == 0
    if cross:
        cell.hub.cosigned_for["clb"] = "caw"  # show clb the other history's cosigned note

    caw = await run_gateway(cell.gateways["caw"], WITNESS_GRACE_ROUNDS + 2)
    clb = await run_gateway(cell.gateways["clb"], WITNESS_GRACE_ROUNDS + 2)

    assert caw == Outcome(None, WITNESS_GRACE_ROUNDS + 2, 10)
    assert clb.halted is not None, "the gateway on the refused branch must halt"
    assert clb.rounds <= (1 if cross else WITNESS_GRACE_ROUNDS)
    assert clb.witnessed_size == 0


async def test_rollback_to_an_older_snapshot(cell: Cell) -> None:
    assert await cell.collector("caw", cell.base).collect(10, cell.urls, QUORUM) == 3
    before = await run_gateway(cell.gateways["caw"], 2)
    assert before == Outcome(None, 2, 10)

    # The hub is restored from a snapshot of 6 leaves and goes on logging: 12 leaves.
    restored = cell.base.fork(6, 6)
    collector = cell.collector("caw", restored)
    cell.hub.views["clb"] = restored
    cell.hub.collectors["clb"] = collector
    collector.witness_sizes = {key.name: 10 for key in cell.urls}  # what the hub had learnt
    assert await collector.collect(12, cell.urls, QUORUM) == 0  # 422: not an extension
    collector.witness_sizes = {}
    assert await collector.collect(12, cell.urls, QUORUM) == 0  # 409 with 10, then 422

    # The gateway that saw 10 halts at once; one that never saw the old history halts too,
    # within the grace rounds, for want of a quorum.
    seen_before = await run_gateway(cell.gateways["caw"], WITNESS_GRACE_ROUNDS + 2)
    newcomer = await run_gateway(cell.gateways["clb"], WITNESS_GRACE_ROUNDS + 2)
    assert seen_before.halted is not None
    assert seen_before.rounds == 1
    assert newcomer.halted is not None
    assert newcomer.rounds <= WITNESS_GRACE_ROUNDS


async def test_the_hub_serves_no_line_that_does_not_verify(cell: Cell) -> None:
    """A witness answering under a key the policy does not give it adds nothing: a note with a
    bad line of a known witness would be refused by every receiver."""
    stranger = IdentityKey.from_seed(os.urandom(32)).public.raw
    rekeyed = {WitnessKey(key.name, stranger): url for key, url in cell.urls.items()}
    collector = cell.collector("caw", cell.base)
    assert await collector.collect(10, rekeyed, 1) == 0
    assert collector.latest is None
    assert await collector.collect(10, cell.urls, QUORUM) == 3
    assert collector.latest is not None
