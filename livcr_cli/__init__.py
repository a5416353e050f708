"""The `livcr` command: joins the subcommand groups each package owns.

A group's module is imported when the group is used, not whenever `livcr` starts: a hub command
does not pay for importing the gateway, the witness or the oversight report (together most of a
second on a busy machine, for every command a script runs). Service packages contribute their
groups when installed; the core never imports them.
"""

from __future__ import annotations

import importlib.util

import click

from livcr_exchange.service.lazy_commands import LazyGroup

# Each command and the module whose COMMANDS defines it.
COMMAND_MODULES = {
    "audit": "livcr_exchange.service.audit_cli",
    "gateway": "gateway.cli",
    "hub": "hub.cli",
    "inspect": "livcr_exchange.service.cli",
    "keys": "livcr_exchange.service.cli",
    "purposes": "livcr_exchange.service.cli",
    "vectors": "livcr_exchange.service.cli",
    "witness": "witness.cli",
}


def _installed(module_name: str) -> bool:
    """Whether the module's top-level package is there (found, not imported)."""
    return importlib.util.find_spec(module_name.split(".", maxsplit=1)[0]) is not None


class _InstalledGroup(LazyGroup):
    """Offers a service package's commands only where that package is installed."""

    def available(self, module_name: str) -> bool:
        return _installed(module_name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        try:
            return super().get_command(ctx, cmd_name)
        except ModuleNotFoundError as exc:
            module_name = COMMAND_MODULES.get(cmd_name, "")
            if exc.name not in {module_name, module_name.split(".")[0]}:
                raise
            return None  # a service package that is not installed has no command


@click.group(cls=_InstalledGroup, lazy=COMMAND_MODULES)
@click.version_option(package_name="livcr-exchange")
def main() -> None:
    """livcr-exchange: purpose-bound, end-to-end encrypted case messages for a LIVC-R."""
