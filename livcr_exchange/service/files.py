"""Writing a secret file: mode 0600 from its first byte, never over an existing file."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start and write ``data`` durably.

    Raises:
        FileExistsError: ``path`` exists (it is never overwritten).
        OSError: the file could not be written.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
