"""Finding: files readable by everyone. Every file the hub and the gateways create while they
serve is 0600, in a data folder that is 0700; so are their databases, whoever created them."""

from __future__ import annotations

import stat
from pathlib import Path

import aiohttp
import attack_harness
import attack_process
import msgspec
from cellproc import Cell
from hubproc import HubProcess

from livcr_exchange.purpose_examples import example_body
from livcr_exchange.roles import Role

hub_process_fixture = attack_process.hub_process_fixture


def modes(folder: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}


def assert_private(folder: Path, before: dict[Path, int], databases: list[str]) -> None:
    """The folder is 0700; every file not there ``before`` and every database file is 0600;
    no folder the service made is open to others."""
    now = modes(folder)
    assert now[folder] == 0o700, oct(now[folder])
    for path, mode in now.items():
        if path.name.startswith("serve") and path.suffix == ".log":
            continue  # the test's capture of the service's stderr, made by the test
        created = path not in before
        database = any(path.name.startswith(name) for name in databases)
        if path.is_dir() and created:
            assert mode == 0o700, (path, oct(mode))
        elif path.is_file() and (created or database):
            assert mode == 0o600, (path, oct(mode))


async def test_the_hub_creates_nothing_others_can_read(hub_process: HubProcess) -> None:
    before = modes(hub_process.directory)
    hub_process.stop()
    hub_process.start()
    async with aiohttp.ClientSession() as session:
        await hub_process.client("coord", session).open_case(
            attack_harness.minted("file modes"), ["caw"]
        )
        assert_private(hub_process.directory, before, ["hub.sqlite3"])
    hub_process.stop()
    assert_private(hub_process.directory, before, ["hub.sqlite3"])


def test_gateways_create_nothing_others_can_read(tmp_path: Path) -> None:
    cell = Cell(tmp_path, {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER})
    folders = {pid: gateway.folder for pid, gateway in cell.gateways.items()}
    before = {pid: modes(folder) for pid, folder in folders.items()}
    hub_before = modes(cell.hub.directory)
    cell.start()
    try:
        sent = cell["caw"].api.send(
            attack_harness.minted("gateway file modes"),
            "aanmelding",
            ["coord"],
            msgspec.to_builtins(example_body("aanmelding")),
        )
        cell["coord"].wait_for([sent["message_id"]])
        for pid, folder in folders.items():
            assert_private(folder, before[pid], ["gateway.sqlite3"])
        assert_private(cell.hub.directory, hub_before, ["hub.sqlite3"])
    finally:
        cell.stop()
    for pid, folder in folders.items():
        assert_private(folder, before[pid], ["gateway.sqlite3"])
    assert_private(cell.hub.directory, hub_before, ["hub.sqlite3"])
