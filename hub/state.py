"""The hub's running state: store, log, directory cache, clock and randomness, push registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from aiohttp import web

from livcr_exchange.directory import Directory
from livcr_exchange.hashing import RandomSource
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.replay import ReplayCache
from livcr_exchange.statements import DirectoryEntry, Revocation

from .config import HubConfig
from .log import TransparencyLog
from .store.base import HubStore

Clock = Callable[[], int]
DIRECTORY_REFRESH_SECONDS = 1.0
# A key the cached directory does not know may belong to a participant enrolled a moment ago;
# it is looked up again, but no more often than this, so unknown keys cannot flood the store.
DIRECTORY_MISS_REFRESH_SECONDS = 0.1


@dataclass
class PushRegistry:
    """WebSocket connections of online gateways, per participant (this process only)."""

    sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)

    def add(self, participant_id: str, socket: web.WebSocketResponse) -> None:
        self.sockets.setdefault(participant_id, set()).add(socket)

    def remove(self, participant_id: str, socket: web.WebSocketResponse) -> None:
        self.sockets.get(participant_id, set()).discard(socket)

    async def push(self, participant_id: str, frame: dict[str, object]) -> None:
        data = msgspec.json.encode(frame).decode()
        for socket in list(self.sockets.get(participant_id, ())):
            if socket.closed:
                self.remove(participant_id, socket)
                continue
            try:
                await socket.send_str(data)
            except (ConnectionError, RuntimeError):
                self.remove(participant_id, socket)

    async def close_all(self) -> None:
        for sockets in self.sockets.values():
            for socket in list(sockets):
                await socket.close(code=1001, message=b"hub shutting down")


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
    # Serialises read-modify-write of case records in this process (operations.case_write).
    case_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

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
        """Reload the directory when the store holds statements we have not verified yet.

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
            return self.directory
