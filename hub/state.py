"""The hub's running state: store, log, directory cache, clock and randomness, push registry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import msgspec
import structlog
from aiohttp import WSCloseCode, web

from livcr_exchange.directory import Directory
from livcr_exchange.errors import LivcrError
from livcr_exchange.hashing import RandomSource
from livcr_exchange.hub_answers import DeliveryFrame
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.replay import ReplayCache
from livcr_exchange.statements import DirectoryEntry, Revocation

from .admission import BodyBudget
from .config import HubConfig
from .log import TransparencyLog
from .readiness import Readiness
from .store.base import HubStore

log = structlog.get_logger("livcr.hub")
Clock = Callable[[], int]
DIRECTORY_REFRESH_SECONDS = 1.0
# A key the cached directory does not know may belong to a participant enrolled a moment ago;
# it is looked up again, but no more often than this, so unknown keys cannot flood the store.
DIRECTORY_MISS_REFRESH_SECONDS = 0.1
# Frames waiting for one push socket before its gateway counts as too slow and is dropped.
PUSH_QUEUE_LIMIT = 1024
CLOSE_NOT_PARTICIPANT = b"no longer a participant of the cell"
CLOSE_TOO_SLOW = b"too slow: fetch the inbox, then connect again"


@dataclass
class PushRegistry:
    """WebSocket connections of online gateways, per participant (this process only).

    Each socket is held with the identity key that opened it. Once that key no longer speaks for
    its participant (revoked, expired, replaced), ``drop_invalid`` forgets the socket, so nothing
    more is pushed to it, and closes it.

    A push never waits for a socket: each has its own queue and sender task, so a gateway that
    reads slowly (or not at all) holds up no sender's receipt. One that lets PUSH_QUEUE_LIMIT
    frames pile up is dropped; what was not pushed stays in its inbox (at-least-once delivery),
    and it catches up from there when it connects again.
    """

    sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)
    _key_ids: dict[web.WebSocketResponse, bytes] = field(default_factory=dict)
    _queues: dict[web.WebSocketResponse, asyncio.Queue[str]] = field(default_factory=dict)
    _senders: dict[web.WebSocketResponse, asyncio.Task[None]] = field(default_factory=dict)
    _closing: set[asyncio.Task[bool]] = field(default_factory=set)

    def add(self, participant_id: str, key_id: bytes, socket: web.WebSocketResponse) -> None:
        self.sockets.setdefault(participant_id, set()).add(socket)
        self._key_ids[socket] = key_id
        queue: asyncio.Queue[str] = asyncio.Queue(PUSH_QUEUE_LIMIT)
        self._queues[socket] = queue
        self._senders[socket] = asyncio.create_task(self._send_loop(socket, queue), name="hub-push")

    def remove(self, participant_id: str, socket: web.WebSocketResponse) -> None:
        self.sockets.get(participant_id, set()).discard(socket)
        self._key_ids.pop(socket, None)
        self._queues.pop(socket, None)
        sender = self._senders.pop(socket, None)
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()

    def holds(self, participant_id: str, socket: web.WebSocketResponse) -> bool:
        return socket in self.sockets.get(participant_id, ())

    def drop_invalid(self, directory: Directory, at: int) -> list[str]:
        """Forget and close every socket whose key does not speak for its participant at ``at``
        (spec §5.6); return the participants cut off. The closes run in the background: a peer
        slow to answer the close handshake holds up nobody."""
        dropped = []
        for participant_id, sockets in self.sockets.items():
            for socket in list(sockets):
                try:
                    directory.entry_for_key(participant_id, self._key_ids[socket], at)
                except (LivcrError, KeyError):
                    self.remove(participant_id, socket)
                    self._close_later(socket, WSCloseCode.POLICY_VIOLATION, CLOSE_NOT_PARTICIPANT)
                    dropped.append(participant_id)
        return dropped

    def _close_later(self, socket: web.WebSocketResponse, code: int, message: bytes) -> None:
        closing = asyncio.create_task(socket.close(code=code, message=message))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def online(self, participant_id: str) -> bool:
        """Whether the participant has a push socket on this process."""
        return bool(self.sockets.get(participant_id))

    def push(self, participant_id: str, frame: DeliveryFrame) -> None:
        """Queue ``frame`` for every socket of the participant; never waits."""
        sockets = self.sockets.get(participant_id)
        if not sockets:
            return  # nobody to encode the frame for
        data = msgspec.json.encode(frame).decode()
        for socket in list(sockets):
            queue = self._queues.get(socket)
            if socket.closed or queue is None:
                self.remove(participant_id, socket)
                continue
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                log.warning("push stream too slow; dropped", participant=participant_id)
                self.remove(participant_id, socket)
                self._close_later(socket, WSCloseCode.TRY_AGAIN_LATER, CLOSE_TOO_SLOW)

    async def _send_loop(self, socket: web.WebSocketResponse, queue: asyncio.Queue[str]) -> None:
        while True:
            data = await queue.get()
            try:
                await socket.send_str(data)
            except (ConnectionError, RuntimeError):
                return  # the connection is gone: the stream's handler sees it and removes it

    async def close_all(self) -> None:
        for participant_id, sockets in list(self.sockets.items()):
            for socket in list(sockets):
                self.remove(participant_id, socket)
                await socket.close(code=WSCloseCode.GOING_AWAY, message=b"hub shutting down")


@dataclass
class Hub:
    config: HubConfig
    store: HubStore
    log: TransparencyLog
    clock: Clock
    random: RandomSource
    root: IdentityPublicKey
    directory: Directory
    nonces: ReplayCache = field(default_factory=ReplayCache)
    push: PushRegistry = field(default_factory=PushRegistry)
    _statement_count: int = -1
    _checked_at: float = float("-inf")
    _miss_checked_at: float = float("-inf")
    _directory_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Serialises read-modify-write of case records in this process; see ``case_registry``.
    case_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    body_budget: BodyBudget = field(init=False)
    streamed_budget: BodyBudget = field(init=False)
    readiness: Readiness = field(default_factory=Readiness)

    def __post_init__(self) -> None:
        self.body_budget = BodyBudget(self.config.hub.body_memory_budget_bytes)
        self.streamed_budget = BodyBudget(self.config.hub.streamed_body_budget_bytes)

    @contextlib.asynccontextmanager
    async def case_registry(self) -> AsyncIterator[None]:
        """Held around a read-modify-write of case records: by this process's tasks one at a
        time, and across the processes sharing the store (one store lock per process at most)."""
        async with self.case_lock, self.store.case_registry_lock():
            yield

    async def current_directory(self) -> Directory:
        """The directory, re-read from the store at most once a second (others may enrol)."""
        if asyncio.get_running_loop().time() - self._checked_at >= DIRECTORY_REFRESH_SECONDS:
            return await self.refresh_directory()
        return self.directory

    async def directory_after_miss(self) -> Directory:
        """The directory re-read now, for a key it did not know: its participant may have been
        enrolled a moment ago. Misses re-read at most every DIRECTORY_MISS_REFRESH_SECONDS."""
        now = asyncio.get_running_loop().time()
        if now - self._miss_checked_at < DIRECTORY_MISS_REFRESH_SECONDS:
            return self.directory
        self._miss_checked_at = now
        return await self.refresh_directory()

    async def refresh_directory(self) -> Directory:
        """Reload the directory when the store holds statements we have not verified yet; close
        the push streams of participants it no longer lets in.

        Every statement is verified against the root key on load: the store is not trusted to
        have kept only what the root signed.
        """
        async with self._directory_lock:
            self._checked_at = asyncio.get_running_loop().time()
            statements = await self.store.statements()
            if len(statements) != self._statement_count:
                entries = [
                    DirectoryEntry.open(s, self.root) for k, _, s in statements if k == "entry"
                ]
                revocations = [
                    Revocation.open(s, self.root) for k, _, s in statements if k == "revocation"
                ]
                self.directory = Directory(
                    self.config.hub.cell_id, self.root, tuple(entries), tuple(revocations)
                )
                self._statement_count = len(statements)
            # Also when nothing changed: a revocation or an entry's end may take effect later.
            for participant_id in self.push.drop_invalid(self.directory, self.clock()):
                log.info("push stream closed: key no longer valid", participant=participant_id)
            return self.directory
