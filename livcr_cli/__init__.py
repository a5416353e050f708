"""The `livcr` command: joins the subcommand groups each package owns.

A group's module is imported when the group is used, not whenever `livcr` starts: a hub command
does not pay for importing the gateway, the witness or the oversight report (together most of a
second on a busy machine, for every command a script runs). Service packages contribute their
groups when installed; the core never imports them.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

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


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002  (click's signature)
        return sorted(name for name, module in COMMAND_MODULES.items() if _installed(module))

    def get_command(
        self,
        ctx: click.Context,  # noqa: ARG002  (click's signature)
        cmd_name: str,
    ) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None or not _installed(module_name):
            return None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name not in {module_name, module_name.split(".")[0]}:
                raise
            return None  # a service package that is not installed has no command
        command: click.Command = next(c for c in module.COMMANDS if c.name == cmd_name)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="livcr-exchange")
def main() -> None:
    """livcr-exchange: purpose-bound, end-to-end encrypted case messages for a LIVC-R."""
