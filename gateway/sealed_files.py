"""Documents at rest: a file sealed with the local key, written and read in constant memory.

libsodium's XChaCha20-Poly1305 secretstream (through PyNaCl): a random header, then chunks of
CHUNK_BYTES of plaintext, each authenticated with the file's associated data (its id, so a
file cannot stand in for another), the last tagged final, so a truncated or reordered file
does not open. The key is derived from the gateway's local key for this use alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import nacl.bindings as sodium
import nacl.exceptions

from .localbox import LocalKeyError

CHUNK_BYTES = 64 * 1024
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_HEADER = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE


class SealedWriter:
    """Writes one sealed file; ``close`` seals its end and makes it durable, ``discard`` drops
    it. The file is created 0600 and never holds plaintext."""

    def __init__(self, path: Path, key: bytes, aad: bytes) -> None:
        self.path = path
        self._aad = aad
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: IO[bytes] = os.fdopen(descriptor, "wb")
        self._file.write(header)
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) > CHUNK_BYTES:
            self._push(bytes(self._pending[:CHUNK_BYTES]), _MESSAGE)
            del self._pending[:CHUNK_BYTES]

    def _push(self, chunk: bytes, tag: int) -> None:
        state = self._state
        self._file.write(
            sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, self._aad, tag)
        )

    def close(self) -> None:
        self._push(bytes(self._pending), _FINAL)
        self._pending.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def read_sealed(path: Path, key: bytes, aad: bytes) -> Iterator[bytes]:
    """The plaintext of a sealed file, chunk by chunk.

    Raises:
        LocalKeyError: the file was altered, truncated, moved to another id, or is not there.
    """
    try:
        with path.open("rb") as handle:
            state = sodium.crypto_secretstream_xchacha20poly1305_state()
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, handle.read(_HEADER), key)
            while chunk := handle.read(CHUNK_BYTES + _ABYTES):
                plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, aad)
                yield plain
                if tag == _FINAL:
                    if handle.read(1):
                        raise LocalKeyError(f"{path.name}: bytes after the sealed end")
                    return
    except nacl.exceptions.CryptoError as exc:
        raise LocalKeyError(f"{path.name}: does not open with the local key") from exc
    except OSError as exc:
        raise LocalKeyError(f"{path.name}: cannot read it: {exc.strerror}") from exc
    raise LocalKeyError(f"{path.name}: truncated (no sealed end)")
