"""A click group whose subcommands live in modules imported only when they are used.

A command's start-up is what a script pays for every line it runs: `livcr hub keys` should not
import the HTTP server, the store drivers and the console to print a key. So a group names, for
each subcommand it does not define itself, the module whose ``COMMANDS`` holds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """``lazy`` maps a subcommand's name to the module that defines it in ``COMMANDS``."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def available(self, module_name: str) -> bool:  # noqa: ARG002  (a hook for subclasses)
        """Whether the module can be imported here (a subclass may say no)."""
        return True

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name, module in self.lazy.items() if self.available(module)]
        return sorted({*super().list_commands(ctx), *lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        own = super().get_command(ctx, cmd_name)
        module_name = self.lazy.get(cmd_name)
        if own is not None or module_name is None or not self.available(module_name):
            return own
        module = importlib.import_module(module_name)
        command: click.Command = next(c for c in module.COMMANDS if c.name == cmd_name)
        return command
