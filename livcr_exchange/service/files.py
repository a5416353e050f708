"""Writing a service's files: mode 0600 from their first byte, durably.

``write_private`` creates a secret file, never over an existing one; ``replace_private``
replaces one atomically (a reader sees the old file or the new, whole); ``open_private`` opens
an export of personal data for writing, made 0600 even when the file was there before with a
wider mode.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

PRIVATE_MODE = 0o600


def write_new(path: Path, data: bytes, mode: int = PRIVATE_MODE) -> None:
    """Create ``path`` with ``mode`` from the start and write ``data`` durably.

    Raises:
        FileExistsError: ``path`` exists (it is never overwritten).
        OSError: the file could not be written.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_private(path: Path, data: bytes) -> None:
    """``write_new`` with mode 0600. Raises FileExistsError, OSError."""
    write_new(path, data, PRIVATE_MODE)


def replace_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file holding ``data``. Raises OSError."""
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    write_private(temporary, data)
    temporary.replace(path)


def open_private(path: Path) -> IO[str]:
    """``path`` opened for writing UTF-8 text, truncated, mode 0600. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)  # a file there before keeps its mode through O_CREAT
    return os.fdopen(fd, "w", encoding="utf-8")
