"""A document in the dossier as the embedding API hands it out: its metadata, and its bytes
decrypted as they are read, saved to a path or read as a binary file object."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .sealed_files import read_sealed


@dataclass(frozen=True)
class Document:
    """One document of a message: ``name``, ``media_type`` (checked by content), ``size`` and
    ``digest`` (hex of H(LABEL_ATTACHMENT, bytes), checked on receipt)."""

    name: str
    media_type: str
    size: int
    digest: str
    path: Path = field(repr=False)
    key: bytes = field(repr=False)
    aad: bytes = field(repr=False)

    def chunks(self) -> Iterator[bytes]:
        """The bytes, chunk by chunk. Raises LocalKeyError (altered, or erased meanwhile)."""
        return read_sealed(self.path, self.key, self.aad)

    def open(self) -> BinaryIO:
        """A binary file object reading the document, decrypted as it is read."""
        return io.BufferedReader(_ChunkReader(self.chunks()))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the document to ``path`` (created 0600, or replaced); the path."""
        target = Path(path)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out, self.open() as source:
            shutil.copyfileobj(source, out)
        return target


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._left:
            piece = next(self._chunks, None)
            if piece is None:
                return 0
            self._left = piece
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count
