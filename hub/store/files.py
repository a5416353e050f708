"""Envelope files beside a SQLite store: one file per envelope streamed in, never held whole.

The folder is ``<database>.envelopes/``. An upload writes ``<random>.part``; on acceptance the
part is fsynced, linked to its final name (the message id in hex) and unlinked, the folder is
fsynced, and only then is the envelope's row committed. The link, unlike a rename, never
replaces a file: a second upload under the same message id finds the name taken and is refused
as a replay. So what a row names is always durable, and whatever a crash leaves (a part, a file
whose row never committed) names no row: ``sweep`` removes it when the store opens, if no other
process has the store open (an operator command beside a running hub must not sweep away the
hub's uploads in flight): each opener holds a shared ``flock`` on ``<folder>-lock`` for its
lifetime, and only one that gets it exclusively sweeps.

A file goes when its row goes: the row's deletion names the file in ``envelope_files_gone`` in
the same transaction (a trigger), and the store unlinks it after the commit (``unlink``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

from .base import CommitResult, DuplicateEnvelope, WriteBatch

PART_SUFFIX = ".part"
WRITE_PIECE = 1024 * 1024  # bytes gathered before one write, on a worker thread
READ_PIECE = 256 * 1024


class EnvelopeFiles:
    """The folder of envelope files (module doc)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock_fd = -1

    def hold(self) -> bool:
        """Create the folder and hold it for this store's lifetime; whether this process is
        its only holder (and so may sweep it)."""
        self.folder.mkdir(mode=0o700, exist_ok=True)
        lock = self.folder.with_name(self.folder.name + "-lock")
        self._lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            return False
        return True

    def share(self) -> None:
        """Let other processes open the store (after the sweep)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def path(self, message_id: bytes) -> Path:
        return self.folder / message_id.hex()

    def new_part(self) -> tuple[int, Path]:
        part = self.folder / (secrets.token_hex(16) + PART_SUFFIX)
        return os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), part

    def publish(self, part: Path, message_id: bytes) -> None:
        """Give the (fsynced) part its final name, durably.

        Raises:
            FileExistsError: a file of that message id exists.
        """
        os.link(part, self.path(message_id))
        part.unlink()
        self.sync_folder()

    def unlink(self, message_ids: Iterable[bytes]) -> None:
        for message_id in message_ids:
            with contextlib.suppress(FileNotFoundError):
                self.path(message_id).unlink()
        self.sync_folder()

    def sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sweep(self, keep: set[bytes]) -> int:
        """Remove parts, and files whose message id is not in ``keep``; how many went."""
        removed = 0
        for entry in self.folder.iterdir():
            name = entry.name
            if name.endswith(PART_SUFFIX) or not _names_one_of(name, keep):
                entry.unlink()
                removed += 1
        if removed:
            self.sync_folder()
        return removed

    async def chunks(self, message_id: bytes, start: int) -> AsyncIterator[bytes]:
        """The file's bytes from ``start``, READ_PIECE at a time, read on a worker thread."""
        handle = await asyncio.to_thread(self.path(message_id).open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            while piece := await asyncio.to_thread(handle.read, READ_PIECE):
                yield piece
        finally:
            handle.close()


def _names_one_of(name: str, keep: set[bytes]) -> bool:
    try:
        return bytes.fromhex(name) in keep
    except ValueError:
        return False


class FileSink:
    """An EnvelopeSink writing one part file; ``commit`` publishes it, then commits the row."""

    def __init__(
        self,
        files: EnvelopeFiles,
        message_id: bytes,
        commit: Callable[[WriteBatch], Awaitable[CommitResult]],
    ) -> None:
        self._files = files
        self._message_id = message_id
        self._commit = commit
        self._fd, self._part = files.new_part()
        self._buffer = bytearray()
        self._state = "open"  # then "committed" or "discarded"

    async def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= WRITE_PIECE:
            await self._flush()

    async def _flush(self) -> None:
        piece, self._buffer = bytes(self._buffer), bytearray()
        await asyncio.to_thread(_write_all, self._fd, piece)

    async def commit(self, batch: WriteBatch) -> CommitResult:
        await self._flush()
        await asyncio.to_thread(os.fsync, self._fd)
        os.close(self._fd)
        self._fd = -1
        try:
            await asyncio.to_thread(self._files.publish, self._part, self._message_id)
        except FileExistsError as exc:
            await self.discard()
            raise DuplicateEnvelope(f"message {self._message_id.hex()} is held already") from exc
        try:
            result = await self._commit(batch)
        except BaseException:
            self._state = "discarded"
            await asyncio.to_thread(self._files.unlink, [self._message_id])
            raise
        self._state = "committed"
        return result

    async def discard(self) -> None:
        if self._state != "open":
            return
        self._state = "discarded"
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self._part.unlink()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
