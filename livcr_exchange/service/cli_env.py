"""What the CLI takes from the environment: the config file, and passphrases when no one types.

A passphrase comes from its variable, else from a hidden prompt on the terminal; with neither
(a script, a service manager) the error names the variable to set.
"""

from __future__ import annotations

import os
import sys

import click

CONFIG_ENV = "LIVCR_CONFIG"  # an alternative to --config for every command that takes one
# The variables' names, not secrets:
PASSPHRASE_ENV = "LIVCR_PASSPHRASE"  # noqa: S105  (a participant's or an auditor's key file)
ROOT_PASSPHRASE_ENV = "LIVCR_ROOT_PASSPHRASE"  # noqa: S105  (the cell root's key file)


def passphrase_from(env_var: str, label: str, *, confirm: bool = False) -> bytes:
    """The passphrase in ``env_var``, else typed at the terminal.

    Raises:
        click.ClickException: the variable is not set and there is no terminal to ask on.
    """
    value = os.environ.get(env_var)
    if value is None:
        if not sys.stdin.isatty():
            raise click.ClickException(
                f"no {label.lower()}: set {env_var} (there is no terminal to ask on)"
            )
        value = click.prompt(label, hide_input=True, confirmation_prompt=confirm)
    return value.encode("utf-8")


def key_passphrase(*, confirm: bool = False) -> bytes:
    """A key file's passphrase: $LIVCR_PASSPHRASE, else typed. Raises click.ClickException."""
    return passphrase_from(PASSPHRASE_ENV, "Key file passphrase", confirm=confirm)


def root_passphrase(*, confirm: bool = False) -> bytes:
    """The root key's: $LIVCR_ROOT_PASSPHRASE, else typed. Raises click.ClickException."""
    return passphrase_from(ROOT_PASSPHRASE_ENV, "Root key passphrase", confirm=confirm)
