"""A hub process for the attack tests, on SQLite or PostgreSQL (the ``store_kind`` fixture).

There is no conftest.py here (see tests/hub/hub_harness.py on why); a test module binds
``hub_process_fixture`` to use it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# tests/ for the shared helpers, tests/hub for hub_harness (the attack tests import this first).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hub"))
from hubproc import HubProcess
from pgdb import MIGRATED

from livcr_exchange.roles import Role

ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER, "clb": Role.DEELNEMER}


@contextmanager
def hub_process(
    kind: str, folder: Path, extra_config: str = "", roles: dict[str, Role] = ROLES
) -> Iterator[HubProcess]:
    """A cell with ``roles`` enrolled, its hub serving; ``extra_config`` goes into ``[hub]``."""
    with _database(kind) as dsn:
        hub = HubProcess.create(folder / "cell", roles, dsn=dsn)
        if extra_config:
            text = hub.config_path.read_text()
            hub.config_path.write_text(text.replace("[store]", extra_config + "\n[store]", 1))
        hub.start()
        try:
            yield hub
        finally:
            hub.stop()


@contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    with MIGRATED.database() as dsn:
        yield dsn


@pytest.fixture(name="hub_process")
def hub_process_fixture(store_kind: str, tmp_path: Path) -> Iterator[HubProcess]:
    with hub_process(store_kind, tmp_path) as hub:
        yield hub
