"""The hub's transparency log: leaves from the store, a Merkle tree in memory, signed checkpoints.

The store decides the order of leaves (inside its commit), so several hub processes sharing one
database see one log. Each process keeps the tree's leaf hashes in memory, catches up from the
store before it answers, and signs checkpoints with the one log key: Ed25519 signatures are
deterministic, so every process serves byte-identical checkpoints for the same size.
"""

from __future__ import annotations

import asyncio

from livcr_exchange.audit.checkpoint import Checkpoint, sign_checkpoint
from livcr_exchange.audit.merkle import LeafHashList, consistency_proof, inclusion_proof, root_hash
from livcr_exchange.keys import IdentityKey

from .store.base import HubStore

# Signed notes kept per tree size. Every envelope of one group commit gets the same tree size,
# so its checkpoint is signed once for the group, not once per receipt; a few sizes are kept
# because receipts of consecutive groups interleave on the event loop.
NOTE_CACHE_SIZES = 8


class TransparencyLog:
    def __init__(self, store: HubStore, origin: str, signer: IdentityKey) -> None:
        self._store = store
        self.origin = origin
        self._signer = signer
        self._tree = LeafHashList()
        self._loading: asyncio.Future[None] | None = None  # the running load (catch_up)
        self._saved_size = -1
        self._notes: dict[int, bytes] = {}

    @property
    def key_name(self) -> str:
        return self.origin

    @property
    def public_key(self) -> bytes:
        return self._signer.public.raw

    async def catch_up(self, size: int | None = None) -> int:
        """Load leaf hashes the store committed since we last looked; return the tree size.

        One load runs at a time, and everyone who needs leaves meanwhile waits for that same
        load: the receipts of one group commit share one store read and all resume as soon as
        it ends, instead of taking turns in a lock (one event-loop iteration each).
        """
        target = await self._store.tree_size() if size is None else size
        while len(self._tree) < target:
            before = len(self._tree)
            if self._loading is None:
                self._loading = asyncio.ensure_future(self._load(target))
            # Shielded: a waiter that goes away must not cancel the load the others wait for.
            await asyncio.shield(self._loading)
            if len(self._tree) == before:
                break  # the store holds no more leaves than we do
        return len(self._tree)

    async def _load(self, target: int) -> None:
        try:
            while len(self._tree) < target:
                start = len(self._tree)
                for leaf_hash in await self._store.leaf_hashes(start, min(target, start + 10_000)):
                    self._tree.append(leaf_hash)
                if len(self._tree) == start:
                    break
        finally:
            self._loading = None

    def size(self) -> int:
        return len(self._tree)

    def checkpoint_note(self, size: int) -> bytes:
        """The signed checkpoint for the first ``size`` leaves (deterministic).

        The tree is append-only and Ed25519 signatures are deterministic, so the note of a size
        never changes: a cached one is byte-identical to a freshly signed one.
        """
        note = self._notes.get(size)
        if note is None:
            checkpoint = Checkpoint(self.origin, size, root_hash(self._tree, size))
            note = sign_checkpoint(checkpoint, self.key_name, self._signer)
            if len(self._notes) >= NOTE_CACHE_SIZES:
                del self._notes[next(iter(self._notes))]  # the oldest size
            self._notes[size] = note
        return note

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(self._tree, index, size)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(self._tree, old_size, new_size)

    async def save_checkpoint(self) -> None:
        """Persist the checkpoint of the current size, for `livcr hub log verify` and auditors."""
        size = await self.catch_up()
        if size != self._saved_size:
            await self._store.save_checkpoint(size, self.checkpoint_note(size))
            self._saved_size = size
