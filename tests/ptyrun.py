"""Run a program on a pseudo-terminal, as a person at a terminal would, and collect its output."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

COLUMNS, ROWS = 120, 40


def run_in_pty(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[int, str]:
    """The exit status and everything written to the terminal (standard output and error).

    Raises:
        TimeoutError: the program did not finish within ``timeout``; it is killed.
    """
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    process = subprocess.Popen(
        list(argv),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color", **(env or {})},
        cwd=cwd,
        close_fds=True,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                process.kill()
                raise TimeoutError(f"{argv[0]} did not finish in {timeout} s")
            readable, _, _ = select.select([controller], [], [], left)
            if not readable:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the program closed its terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
        returncode = process.wait(timeout=30)
    return returncode, b"".join(chunks).decode("utf-8", errors="replace")
