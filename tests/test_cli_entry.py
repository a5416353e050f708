"""The `livcr` entry point: every group is there, and a command imports only its own group;
within the hub's group a command that only reads files imports no server, and a gateway command
that only calls the local API imports no gateway."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from click.testing import CliRunner

from hub.cli import LAZY_COMMANDS, hub_group
from livcr_cli import COMMAND_MODULES, main

# Runs `livcr ARGS...` in a fresh interpreter and lists on stderr every module it imported.
LOADED = (
    "import json, sys\n"
    "from livcr_cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
)
GROUPS = ("hub", "gateway", "witness", "livcr_exchange.oversight", "aiohttp")


def modules_loaded_by(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    loaded: list[str] = json.loads(result.stderr.strip().splitlines()[-1])
    return loaded


def imported_by(*args: str) -> str:
    """The heavy packages (GROUPS) that `livcr ARGS...` imported, as a sorted list's text."""
    return str(
        sorted(
            {
                m if m.startswith("livcr_exchange") else m.split(".")[0]
                for m in modules_loaded_by(*args)
                if m.startswith(GROUPS)
            }
        )
    )


def test_the_table_names_each_groups_commands_and_nothing_else() -> None:
    for module_name in set(COMMAND_MODULES.values()):
        names = {c.name for c in importlib.import_module(module_name).COMMANDS}
        assert names == {n for n, m in COMMAND_MODULES.items() if m == module_name}, module_name
    listed = CliRunner().invoke(main, ["--help"]).output
    for name in COMMAND_MODULES:
        assert f"\n  {name} " in listed


def test_a_command_imports_only_its_own_group() -> None:
    assert imported_by("--version") == "[]"
    assert imported_by("purposes", "list") == "[]"
    assert imported_by("hub", "--help").startswith("['aiohttp', 'hub'")
    assert "gateway" not in imported_by("hub", "--help")
    assert "hub" not in imported_by("gateway", "--help")


def test_the_hubs_table_names_each_modules_commands_and_nothing_else() -> None:
    for module_name in set(LAZY_COMMANDS.values()):
        names = {c.name for c in importlib.import_module(module_name).COMMANDS}
        assert names == {n for n, m in LAZY_COMMANDS.items() if m == module_name}, module_name
    listed = CliRunner().invoke(main, ["hub", "--help"]).output
    for name in [*LAZY_COMMANDS, *hub_group.commands]:
        assert f"\n  {name} " in listed


def test_printing_the_cells_keys_imports_no_http_stack() -> None:
    seen = imported_by("hub", "keys", "--help")
    assert seen.startswith("['hub'"), seen
    assert "aiohttp" not in seen


def test_a_client_command_of_the_gateway_imports_no_gateway() -> None:
    """`gateway status` and the like only call the local API: neither the gateway itself (its
    hub client, store and crypto) nor its server is imported."""
    heavy = {"gateway.facade", "gateway.api", "gateway.store", "livcr_exchange.service.hub_client"}
    for command in (["gateway", "status", "--help"], ["gateway", "send", "--help"]):
        assert heavy.isdisjoint(modules_loaded_by(*command)), command
