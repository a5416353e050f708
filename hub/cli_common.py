"""What every `livcr hub` command shares: the --config option and loading the file."""

from __future__ import annotations

from pathlib import Path

import click

from livcr_exchange.service.cli_env import CONFIG_ENV

from .config import ConfigError, HubConfig, load_config

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    envvar=CONFIG_ENV,
    show_envvar=True,
    help="The hub's TOML file (made by `livcr hub init`).",
)


def load(config_path: Path) -> HubConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
