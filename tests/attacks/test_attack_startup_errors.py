"""Finding: availability honesty at start-up. A port already in use, or a store the hub cannot
use, stops `livcr hub serve` with one line naming the cause: no traceback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attack_process
import pytest
from hubproc import HubProcess

from livcr_exchange.roles import Role


@pytest.fixture(name="cell")
def cell_fixture(store_kind: str, tmp_path: Path) -> Iterator[HubProcess]:
    """A cell whose hub is not running."""
    with attack_process.hub_process(store_kind, tmp_path, roles={"coord": Role.COORDINATOR}) as hub:
        hub.stop()
        yield hub


def serve(hub: HubProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livcr_cli", "hub", "serve", "--config", str(hub.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], cause: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert cause in lines[0], lines[0]


def test_a_port_in_use_is_one_line(cell: HubProcess) -> None:
    with socket.socket() as taken:
        # The fixture's hub has just served on this port: its closed connections linger in
        # TIME_WAIT. A listener still holds the port against the hub (which reuses addresses).
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", cell.port))
        taken.listen()
        assert_one_line(serve(cell), "address already in use")


def test_a_store_that_cannot_be_written_is_one_line(cell: HubProcess) -> None:
    config = cell.config
    if config.store.kind == "postgresql":
        gone = config.store.dsn.rsplit("/", 1)[0] + "/livcr_no_such_database"
        text = cell.config_path.read_text().replace(config.store.dsn, gone)
        cell.config_path.write_text(text)
        assert_one_line(serve(cell), "livcr_no_such_database")
        return
    database = config.path(config.store.path)
    if os.geteuid() != 0:  # root writes to a read-only file anyway
        database.chmod(0o400)
        assert_one_line(serve(cell), "readonly database")
        database.chmod(0o600)
    for companion in database.parent.glob(database.name + "*"):
        if companion.is_dir():  # the folder of envelope files
            shutil.rmtree(companion)
        else:
            companion.unlink()
    database.write_bytes(b"not a database, and not empty either" * 100)
    assert_one_line(serve(cell), "file is not a database")
