"""The `livcr` command: joins the subcommand groups each package owns."""

from __future__ import annotations

import importlib

import click

from livcr_exchange.service.audit_cli import COMMANDS as AUDIT_COMMANDS
from livcr_exchange.service.cli import COMMANDS as CORE_COMMANDS

# Service packages contribute their groups when installed; the core never imports them.
SERVICE_CLI_MODULES = ("hub.cli", "gateway.cli", "witness.cli")


@click.group()
@click.version_option(package_name="livcr-exchange")
def main() -> None:
    """livcr-exchange: purpose-bound, end-to-end encrypted case messages for a LIVC-R."""


for command in (*CORE_COMMANDS, *AUDIT_COMMANDS):
    main.add_command(command)

for module_name in SERVICE_CLI_MODULES:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in {module_name, module_name.split(".")[0]}:
            raise
        continue
    for command in module.COMMANDS:
        main.add_command(command)
