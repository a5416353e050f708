"""Where delivered envelopes land before they are opened: a spool folder beside the database.

The hub's push and inbox carry notices, never envelopes. For each, the envelope is fetched
with the streaming ``GET /v1/deliveries/{id}`` into ``<database>.spool/<message id>``; a
transfer that breaks off resumes where the file ends (``Range``), a few times, and then gives
up for now (the hub keeps the delivery; it is tried again when the stream reconnects).
Envelopes are opened from their spool file, piece by piece (never whole in memory). A large
envelope that fails its checks is moved to ``<database>.quarantine/``, kept as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from livcr_exchange.constants import LABEL_ENVELOPE_HASH
from livcr_exchange.envelope import HeaderCore
from livcr_exchange.envelope.incoming import IncomingEnvelope, ReceivedEnvelope
from livcr_exchange.hashing import Blake2bStream
from livcr_exchange.hub_answers import DeliveryItem
from livcr_exchange.service.hub_client import HubClient, HubRefused

from .errors import NO_ANSWER

FETCH_ATTEMPTS = 3  # tries of one download (each resumes the last) before giving up for now
# A quarantined envelope up to this size is kept in the store; a larger one in its file, in
# the quarantine folder.
KEPT_IN_STORE_BYTES = 16 * 1024 * 1024
PIECE = 256 * 1024


def quarantine_folder(database: Path) -> Path:
    return database.with_name(database.name + ".quarantine")


def erase_quarantine_files(database: Path, names: list[str]) -> None:
    """Delete files of the quarantine folder (those whose rows say they were erased)."""
    for name in names:
        Spool.remove(quarantine_folder(database) / name)


class FetchFailed(Exception):
    """The envelope could not be fetched now (the hub did not answer, or broke off)."""


class Spool:
    """The spool and quarantine folders of one gateway (module doc)."""

    def __init__(self, database: Path, client: HubClient) -> None:
        self.folder = database.with_name(database.name + ".spool")
        self.quarantine_folder = quarantine_folder(database)
        self._client = client

    def path(self, item: DeliveryItem) -> Path:
        return self.folder / item.message_id

    async def fetch(self, item: DeliveryItem, pause: float) -> Path:
        """The envelope of ``item`` in its spool file, resuming a partial one.

        Raises:
            HubRefused: the hub refused (no such delivery: acknowledged or dropped meanwhile).
            FetchFailed: FETCH_ATTEMPTS transfers broke off.
        """
        self.folder.mkdir(mode=0o700, exist_ok=True)
        target = self.path(item)
        for attempt in range(FETCH_ATTEMPTS):
            try:
                await self._client.download(item.message_id, target, item.size)
            except HubRefused as exc:
                if exc.status < 500:
                    raise
            except NO_ANSWER:
                pass
            else:
                return target
            if attempt + 1 < FETCH_ATTEMPTS:
                await asyncio.sleep(pause * (attempt + 1))
        raise FetchFailed(f"delivery {item.message_id}: {FETCH_ATTEMPTS} transfers broke off")

    def keep(self, path: Path) -> Path:
        """Move a spooled envelope to quarantine, as it came."""
        self.quarantine_folder.mkdir(mode=0o700, exist_ok=True)
        kept = self.quarantine_folder / path.name
        path.replace(kept)
        return kept

    @staticmethod
    def remove(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    @staticmethod
    def envelope_hash(path: Path) -> bytes:
        """The envelope hash (spec §10.4) of a file, read piece by piece."""
        hasher = Blake2bStream(LABEL_ENVELOPE_HASH)
        for piece in read_pieces(path):
            hasher.update(piece)
        return hasher.digest()


def read_pieces(path: Path) -> Iterator[bytes]:
    """The file at ``path`` piece by piece: a re-readable source (``open_documents``)."""
    with path.open("rb") as source:
        while piece := source.read(PIECE):
            yield piece


def header_core_of(path: Path) -> HeaderCore:
    """The header core of the envelope at ``path``, read from its first bytes.

    Raises:
        Malformed, Oversized: the frame or header does not parse, or the file ends first.
    """
    incoming = IncomingEnvelope()
    for piece in read_pieces(path):
        incoming.feed(piece)
        if incoming.header is not None:
            return incoming.header.core
    return incoming.finish().envelope.header.core


def envelope_of(path: Path) -> ReceivedEnvelope:
    """The envelope at ``path`` by its header and digests, read piece by piece.

    Raises:
        Malformed, Oversized: the frame or header does not parse, or the length is wrong.
    """
    incoming = IncomingEnvelope()
    for piece in read_pieces(path):
        incoming.feed(piece)
    return incoming.finish()
