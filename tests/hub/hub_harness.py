"""A running hub for the API tests: aiohttp's test server, a real store, an enrolled cell.

The ``harness`` fixture runs every test twice, once per store the hub supports: a SQLite file in
the test's tmp_path and a PostgreSQL database of the test's own (``store_target`` in
tests/conftest.py), so the API behaves alike on both.

The fixtures ``clock`` and ``harness`` are defined here and bound into each test module. There
is no ``tests/hub/conftest.py``: pytest would import it as the module ``conftest`` and so hide
``tests/conftest.py`` from the test modules that import names from it. There is no
``tests/hub/__init__.py`` either: a package ``hub`` under tests/ would shadow the hub itself.

Enrolment is what `livcr hub enrol` does, without the CLI: directory entries signed by the cell
root key, committed to the store with their directory-change leaves. Time is a ``Clock`` the test
moves; the hub, every ``HubClient`` and every sealed envelope read the same one. The background
round (checkpoints, expiry, retention) is set to an hour, so nothing changes the store behind a
test's back.

What a refusal may change, exactly (``HubHarness.assert_refused`` / ``assert_unchanged``):

- a request whose signature does not check (or that is too large to read) changes nothing in
  the store: counts, every queue, cases, statements, prekeys, checkpoints and the log are equal;
- an authenticated request the hub refuses appends exactly one log leaf, a ``Refusal`` naming the
  caller, the action (the handler's name; ``submit`` per envelope), the error code, the hub's
  time and the envelope's message id (zeros when there is none), and changes nothing else;
- in memory, every request that verified spends its nonce (the replay cache), refused or not.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from json_client import JsonClient

from hub.app import HUB, create_app
from hub.config import HubConfig, parse_config
from hub.operations import STATEMENT_HASH_LABEL, pending_leaf
from hub.state import Hub
from hub.store.base import CaseRecord, HubStore, WriteBatch
from livcr_exchange.audit.leaves import (
    LEAF_SALT_BYTES,
    DirectoryChange,
    Leaf,
    Refusal,
    decode_leaf,
)
from livcr_exchange.audit.merkle import leaf_hash
from livcr_exchange.constants import CONTENT_KEY_BYTES, PAYLOAD_NONCE_PREFIX_BYTES
from livcr_exchange.envelope import (
    CosignBlock,
    MessageSpec,
    SealParts,
    UnverifiedEnvelope,
    seal,
    seal_from_parts,
)
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import IdentityKey, Suite
from livcr_exchange.purposes import CATALOGUE
from livcr_exchange.request_auth import HubBinding, RequestTarget, sign_request
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubClient, HubRefused
from livcr_exchange.statements import Revocation, StatementType

# tests/ holds the shared factories; pytest puts it on sys.path only once it imports a conftest
# or a test module from there, which need not happen before this folder runs.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import StoreTarget
from factories import (
    CELL_ID,
    DAY,
    NOW,
    Cell,
    DeterministicRandom,
    Participant,
    det_bytes,
    make_participant,
    seal_opaque,
)

MAX_REQUEST_BYTES = 64 * 1024  # small, so the oversized-body refusal is cheap to provoke
RETENTION_DAYS = 30
LOG_KEY = IdentityKey.from_seed(det_bytes("hub tests log key", 32))
ORIGIN = f"livcr-exchange/{CELL_ID}"
HUB_BINDING = HubBinding(CELL_ID, ORIGIN)
NO_MESSAGE = bytes(16)

# Participants beyond the factories' four (coord, io-politie, caw, clb), each for one refusal.
NARROW = "ocmw"  # a deelnemer whose directory entry lists only screening_antwoord
REVOKED = "cgg"  # enrolled, then revoked a day before the tests' NOW
OUTSIDER = "vdab"  # has keys, never enrolled
EXTRA_PARTICIPANTS: dict[str, tuple[Role, int]] = {
    NARROW: (Role.DEELNEMER, 10),
    REVOKED: (Role.DEELNEMER, 11),
    OUTSIDER: (Role.DEELNEMER, 12),
}
NARROW_PURPOSES = frozenset({"screening_antwoord"})
Statement = tuple[str, str, bytes]  # kind ("entry" or "revocation"), participant id, signed
# The way through the case table from signaal_ontvangen (spec §8.2).
CASE_PATH = ("signaal_ontvangen", "in_screening", "geagendeerd", "besproken", "traject_lopend")


def role_purposes(role: Role) -> frozenset[str]:
    """Every purpose the catalogue lets ``role`` send or receive (what enrolment grants)."""
    return frozenset(
        tag
        for tag, purpose in CATALOGUE.items()
        if role in purpose.sender_roles or role in purpose.recipient_roles
    )


@dataclass
class Clock:
    """The one clock of a test: the hub, the clients and the sealer all read it."""

    now: int = NOW

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Snapshot:
    """Everything a request could change in the store, for before/after comparisons."""

    counts: dict[str, int]
    pending: dict[str, tuple[str, ...]]  # recipient -> message ids waiting, in queue order
    cases: list[CaseRecord]
    statements: int
    prekeys: dict[str, list[bytes]]
    checkpoints: list[tuple[int, bytes]]

    def without_log(self) -> dict[str, Any]:
        """Everything but the log's size (a refusal's audit leaf is the one change allowed)."""
        counts = {k: v for k, v in self.counts.items() if k != "log_size"}
        return {
            "counts": counts,
            "pending": self.pending,
            "cases": self.cases,
            "statements": self.statements,
            "prekeys": self.prekeys,
            "checkpoints": self.checkpoints,
        }


@dataclass
class HubHarness:
    """A running hub and everything a test needs to talk to it and inspect its store."""

    cell: Cell
    people: dict[str, Participant]
    clock: Clock
    config: HubConfig
    app: web.Application
    server: TestServer
    session: aiohttp.ClientSession
    target: StoreTarget
    random: DeterministicRandom = field(repr=False)

    @property
    def hub(self) -> Hub:
        return self.app[HUB]

    @property
    def store(self) -> HubStore:
        return self.hub.store

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def other_store(self) -> HubStore:
        """A second, unopened store object on the hub's database (another process's view)."""
        return self.target.new()

    def client(self, participant_id: str) -> JsonClient:
        return JsonClient(
            self.url,
            participant_id,
            self.people[participant_id].identity,
            self.session,
            hub=HUB_BINDING,
            clock=self.clock,
        )

    def typed_client(self, participant_id: str) -> HubClient:
        """A client as the gateway and the tools use it: every answer typed."""
        return HubClient(
            self.url,
            participant_id,
            self.people[participant_id].identity,
            self.session,
            hub=HUB_BINDING,
            clock=self.clock,
        )

    def identity(self, participant_id: str) -> IdentityKey:
        return self.people[participant_id].identity

    # Enrolment, as the operator does it: root-signed statements plus their leaves.
    async def enrol(
        self, participant: Participant, purposes: Iterable[str] | None = None, **changes: Any
    ) -> None:
        await self.commit_statements([self.entry_statement(participant, purposes, **changes)])

    async def revoke(self, participant_id: str, at: int) -> None:
        await self.commit_statements([self.revocation_statement(participant_id, at)])

    def entry_statement(
        self, participant: Participant, purposes: Iterable[str] | None = None, **changes: Any
    ) -> Statement:
        """The participant's entry, signed by the root, granting ``purposes`` (default: every
        purpose of its role) with ``changes`` applied."""
        granted = role_purposes(participant.role) if purposes is None else purposes
        entry = replace(participant.entry, allowed_purposes=frozenset(granted), **changes)
        return "entry", entry.participant_id, entry.sign(self.cell.root)

    def revocation_statement(self, participant_id: str, at: int) -> Statement:
        key_id = self.identity(participant_id).key_id
        revocation = Revocation(self.cell.cell_id, participant_id, key_id, at, "left")
        return "revocation", participant_id, revocation.sign(self.cell.root)

    async def commit_statements(self, statements: list[Statement]) -> None:
        """Store root-signed statements with their directory-change leaves, in one commit, and
        let the hub load them at once (it would within a second anyway)."""
        kinds = {"entry": StatementType.DIRECTORY_ENTRY, "revocation": StatementType.REVOCATION}
        leaves = [
            pending_leaf(
                DirectoryChange(
                    self.clock(),
                    self.random(LEAF_SALT_BYTES),
                    kinds[kind],
                    pid,
                    labelled_hash(STATEMENT_HASH_LABEL, signed),
                )
            )
            for kind, pid, signed in statements
        ]
        await self.store.commit(WriteBatch(statements=statements, leaves=leaves))
        await self.hub.refresh_directory()

    # Sealing, with the same clock the hub reads.
    def seal(
        self,
        sender: str,
        recipients: Iterable[str],
        body: bytes = b'{"question":"known?"}',
        *,
        purpose: str = "screening_vraag",
        case_ref: str,
        timestamp: int | None = None,
        ttl: int = 7 * DAY,
        cosign_block: CosignBlock | None = None,
        meeting_ref: str | None = None,
        suite: Suite = Suite.X25519,
        opaque_size: int = 0,
    ) -> bytes:
        """An envelope of ``body``; or, with ``opaque_size``, of that many opaque bytes."""
        spec = MessageSpec(
            self.cell.cell_id,
            sender,
            purpose,
            case_ref,
            {rid: self.people[rid].prekey(suite) for rid in recipients},
            suite,
            cosign_block,
            meeting_ref,
        )
        now = self.clock() if timestamp is None else timestamp
        if opaque_size:
            return seal_opaque(
                self.identity(sender), spec, opaque_size, now=now, ttl=ttl, random=self.random
            )
        return seal(self.identity(sender), spec, body, now=now, ttl=ttl, random=self.random)

    def seal_again(self, envelope: bytes, body: bytes = b'{"question":"known?"}') -> bytes:
        """Other bytes under ``envelope``'s message id: the same sender, recipients, purpose,
        case and expiry, sealed afresh now (as a sender whose envelope went stale does)."""
        core = UnverifiedEnvelope.parse(envelope).header.core
        spec = MessageSpec(
            core.cell_id,
            core.sender_id,
            core.purpose,
            core.case_ref,
            {rid: self.people[rid].prekey(core.suite) for rid in core.recipient_ids()},
            core.suite,
            core.cosign,
            core.meeting_ref,
        )
        parts = SealParts(
            core.message_id,
            self.clock(),
            core.expires_at,
            self.random(CONTENT_KEY_BYTES),
            self.random(PAYLOAD_NONCE_PREFIX_BYTES),
        )
        return seal_from_parts(self.identity(core.sender_id), spec, parts, body)[1]

    def signed_headers(
        self, participant_id: str, method: str, path: str, query: str = "", body: bytes = b""
    ) -> dict[str, str]:
        return sign_request(
            RequestTarget(method, path, query, body),
            participant_id,
            self.identity(participant_id),
            hub=HUB_BINDING,
            now=self.clock(),
            random=self.random,
        )

    async def case_in(
        self,
        case_ref: str,
        state: str,
        members: Iterable[str],
        *,
        meeting: tuple[str, Iterable[str]] | None = None,
    ) -> dict[str, Any]:
        """Open ``case_ref`` as the coordinator and walk the table to ``state``; record
        ``meeting`` (reference, present) on the way, once the case is on the agenda."""
        coord = self.client("coord")
        case = await coord.open_case(case_ref, sorted(members))
        for step in CASE_PATH[1 : CASE_PATH.index(state) + 1]:
            if meeting is not None and step == "besproken":
                await coord.record_meeting(case_ref, meeting[0], sorted(meeting[1]))
            case = await coord.move_case(case_ref, step)
        return case

    # Inspection.
    async def snapshot(self) -> Snapshot:
        pending: dict[str, tuple[str, ...]] = {}
        for pid in self.people:
            records = await self.store.pending(pid, 0, 1000)
            pending[pid] = tuple(r.message_id.hex() for r in records)
        statements = await self.store.statements()
        return Snapshot(
            await self.store.counts(),
            pending,
            await self.store.cases(),
            len(statements),
            await self.store.prekeys(sorted(self.people), self.clock()),
            await self.store.checkpoints(),
        )

    async def leaves_since(self, size: int) -> list[Leaf]:
        """The leaves appended after the log had ``size`` leaves, decoded (hashes checked)."""
        rows = await self.store.leaves(size, await self.store.tree_size())
        decoded: list[Leaf] = []
        for _, stored_hash, data in rows:
            assert data is not None
            assert leaf_hash(data) == stored_hash
            decoded.append(decode_leaf(data))
        return decoded

    async def assert_unchanged(self, before: Snapshot) -> None:
        """An unauthenticated refusal: nothing at all was written, not even a log leaf."""
        after = await self.snapshot()
        assert after.counts == before.counts
        assert after.without_log() == before.without_log()

    async def assert_refused(
        self,
        before: Snapshot,
        *,
        actor: str,
        action: str,
        code: str,
        message_id: bytes = NO_MESSAGE,
    ) -> Refusal:
        """An authenticated refusal: the store is unchanged except for exactly one new log leaf,
        a ``Refusal`` naming the caller, the action and the code, logged at the hub's time."""
        after = await self.snapshot()
        assert after.without_log() == before.without_log()
        assert after.counts["log_size"] == before.counts["log_size"] + 1
        (leaf,) = await self.leaves_since(before.counts["log_size"])
        assert leaf == Refusal(self.clock(), ANY, actor, action, code, message_id)
        return leaf


def sqlite_target(tmp_path: Path) -> StoreTarget:
    return StoreTarget("sqlite", path=tmp_path / "hub.sqlite3")


def make_config(
    tmp_path: Path,
    target: StoreTarget | None = None,
    *,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    checkpoint_interval: float = 3600.0,
) -> HubConfig:
    root = Cell.build().root
    target = target or sqlite_target(tmp_path)
    text = (
        "[hub]\n"
        f'cell_id = "{CELL_ID}"\n'
        f'root_key = "{root.public.to_text()}"\n'
        f"max_request_bytes = {max_request_bytes}\n"
        f"retention_days = {RETENTION_DAYS}\n"
        f"checkpoint_interval_seconds = {checkpoint_interval}\n"
    ) + target.toml()
    return parse_config(text, tmp_path, "test config")


def build_people(cell: Cell) -> dict[str, Participant]:
    people = dict(cell.participants)
    for pid, (role, index) in EXTRA_PARTICIPANTS.items():
        people[pid] = make_participant(cell.cell_id, cell.root, pid, role, index)
    return people


@asynccontextmanager
async def running_hub(
    tmp_path: Path,
    clock: Clock,
    config: HubConfig | None = None,
    target: StoreTarget | None = None,
) -> AsyncIterator[HubHarness]:
    """Start the hub app on a loopback port; enrol the cell; close everything on exit.

    ``target`` is the store (default: SQLite in ``tmp_path``); ``config`` must name the same.
    """
    target = target or sqlite_target(tmp_path)
    config = config or make_config(tmp_path, target)
    cell = Cell.build()
    app = create_app(
        config,
        store=target.new(),
        log_key=LOG_KEY,
        clock=clock,
        random=DeterministicRandom("hub tests: hub randomness"),
    )
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            harness = HubHarness(
                cell,
                build_people(cell),
                clock,
                config,
                app,
                server,
                session,
                target,
                DeterministicRandom("hub tests: sealing"),
            )
            await harness.commit_statements(
                [
                    harness.entry_statement(p, NARROW_PURPOSES if pid == NARROW else None)
                    for pid, p in harness.people.items()
                    if pid != OUTSIDER
                ]
                + [harness.revocation_statement(REVOKED, NOW - DAY)]
            )
            yield harness
    finally:
        await server.close()


async def refused(call: Any) -> HubRefused:
    """Await ``call`` and return the HubRefused it raised (fails if it succeeded)."""
    with pytest.raises(HubRefused) as caught:
        await call
    return caught.value


# Fixtures: a test module binds ``clock_fixture`` and ``harness_fixture`` to use them.
@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


@pytest.fixture(name="harness")
async def harness_fixture(
    tmp_path: Path, clock: Clock, store_target: StoreTarget
) -> AsyncIterator[HubHarness]:
    async with running_hub(tmp_path, clock, target=store_target) as running:
        yield running
