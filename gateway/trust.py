"""What a gateway trusts: a directory signed by its root key, and a log that never forks.

The hub serves the directory and the checkpoints, but the gateway believes neither on the hub's
word: statements must verify against the root key it was enrolled with, and every checkpoint must
be consistent with the ones it saw before (spec §10). A failure halts sending, loudly.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from livcr_exchange.audit.checkpoint import Checkpoint, open_checkpoint
from livcr_exchange.audit.continuity import check_consistent, proof_needed
from livcr_exchange.directory import Directory
from livcr_exchange.errors import LivcrError
from livcr_exchange.hub_answers import DirectoryListing
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.service.hub_client import HubClient, HubRefused

from .store import GatewayStore

log = structlog.get_logger("livcr.gateway.trust")


class TrustFailure(Exception):
    """The hub served something the gateway must not accept; the gateway stops sending."""


class DirectoryUntrusted(TrustFailure):
    """A directory statement does not verify against the enrolled root key."""


class LogForked(TrustFailure):
    """A checkpoint is inconsistent with one seen before: the hub rewrote or forked its log."""


# The meta key under which the last verified directory listing is kept, so that a gateway can
# start while the hub is away. It is verified again when read: the file is no more trusted than
# the hub.
DIRECTORY_META_KEY = "verified_directory"


async def fetch_directory(
    client: HubClient, cell_id: str, root: IdentityPublicKey, store: GatewayStore
) -> Directory:
    """The hub's directory, every statement verified against ``root``; kept for a restart.

    Raises:
        DirectoryUntrusted: a statement not signed by the root, or for another cell.
    """
    listing = await client.directory()
    directory = directory_from_listing(listing, cell_id, root)
    await store.set_meta(DIRECTORY_META_KEY, msgspec.json.encode(listing).decode())
    return directory


async def cached_directory(
    store: GatewayStore, cell_id: str, root: IdentityPublicKey
) -> Directory | None:
    """The directory last fetched from the hub, verified again; None if there is none.

    Raises:
        DirectoryUntrusted: the kept listing does not verify (it was altered on disk).
    """
    text = await store.get_meta(DIRECTORY_META_KEY)
    if text is None:
        return None
    try:
        listing = msgspec.json.decode(text, type=DirectoryListing)
    except msgspec.DecodeError as exc:
        raise DirectoryUntrusted(f"the kept directory is not a directory listing: {exc}") from exc
    return directory_from_listing(listing, cell_id, root)


def directory_from_listing(
    listing: DirectoryListing, cell_id: str, root: IdentityPublicKey
) -> Directory:
    """Verify a directory listing (GET /v1/directory) against ``root``.

    Raises:
        DirectoryUntrusted: a statement not signed by the root, or for another cell.
    """
    if listing.cell_id != cell_id or listing.root_key != root.to_text():
        raise DirectoryUntrusted(
            f"the hub serves cell {listing.cell_id!r} under root"
            f" {listing.root_key!r}, not the cell {cell_id!r} this gateway was enrolled in"
        )
    try:
        return Directory.from_signed(cell_id, root, listing.entries, listing.revocations)
    except (LivcrError, ValueError) as exc:
        raise DirectoryUntrusted(
            f"a directory statement does not verify against the root key: {exc}"
        ) from exc


class CheckpointTracker:
    """Remembers the largest checkpoint seen; accepts a new one only with a consistency proof."""

    def __init__(
        self, store: GatewayStore, client: HubClient, origin: str, key: IdentityPublicKey
    ) -> None:
        self._store = store
        self._client = client
        self._origin = origin
        self._key = key
        self._lock = asyncio.Lock()

    def open(self, note: bytes) -> Checkpoint:
        """Raises CheckpointInvalid."""
        return open_checkpoint(note, self._origin, self._key.raw)

    async def latest(self) -> tuple[Checkpoint, bytes] | None:
        seen = await self._store.checkpoints()
        if not seen:
            return None
        return self.open(seen[-1][1]), seen[-1][1]

    async def observe(self, note: bytes) -> Checkpoint:
        """Check a new signed checkpoint against the latest one seen, then remember it.

        Raises:
            LogForked: no valid consistency proof links the two.
            CheckpointInvalid: the note is not signed by the hub's log key.
        """
        checkpoint = self.open(note)
        async with self._lock:
            previous = await self.latest()
            if previous is not None:
                await self._check_consistent(previous[0], checkpoint)
            await self._store.add_checkpoint(checkpoint.size, note)
        return checkpoint

    async def _check_consistent(self, old: Checkpoint, new: Checkpoint) -> None:
        """The core's continuity rule, the proof fetched from the hub.

        Raises:
            LogForked: the checkpoints contradict each other, or the hub cannot prove they
                do not.
            HubRefused, aiohttp.ClientError: the hub did not answer (the next round retries).
        """
        try:
            sizes = proof_needed(old, new)
            if sizes is None:
                return
            check_consistent(old, new, await self._client.consistency(*sizes))
        except LivcrError as exc:
            raise LogForked(
                f"checkpoint {new.size} is not consistent with checkpoint {old.size}: {exc}"
            ) from exc
        except HubRefused as exc:
            if exc.code != "malformed":
                raise  # not an answer about the log (auth, overload): the next round retries
            # Both sizes are ones the hub signed; refusing them as out of range means it no
            # longer has the tree it signed: its log was rolled back or replaced.
            raise LogForked(
                f"checkpoint {new.size} is not consistent with checkpoint {old.size}: the hub"
                f" cannot prove it ({exc.code}: {exc.detail})"
            ) from exc
