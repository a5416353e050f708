"""What every `livcr hub` command shares: the --config option and loading the file, and the
root key's option and passphrase for the commands that sign with it."""

from __future__ import annotations

from pathlib import Path

import click

from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityKey
from livcr_exchange.service import config_files
from livcr_exchange.service.cli_env import root_passphrase

from .config import HubConfig, load_config
from .keyfiles import KeyFileError, read_root_key

config_option = config_files.config_option("The hub's TOML file (made by `livcr hub init`)")
root_key_option = click.option(
    "--root-key",
    "root_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The cell root's key file (default: root.secret beside the config).",
)


def load(config_path: Path) -> HubConfig:
    """The hub's configuration; a bad one ends the command with the error naming the key."""
    return config_files.load_for_command(config_path, load_config)


def root_key(config: HubConfig, root_file: Path | None) -> IdentityKey:
    """The cell root's key, unlocked with $LIVCR_ROOT_PASSPHRASE or a typed passphrase.

    Raises:
        click.ClickException: no passphrase (no terminal, variable unset), or a wrong one.
    """
    try:
        return read_root_key(root_file or config.path("root.secret"), root_passphrase())
    except (KeyFileError, LivcrError) as exc:
        raise click.ClickException(str(exc)) from exc
