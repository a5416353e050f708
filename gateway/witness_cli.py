"""`livcr gateway witness-key`: make this gateway one of the cell's witnesses (spec §10.7)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from livcr_exchange.errors import LivcrError

from .cli_client import config_option, load
from .witness_key import create_witness_key


@click.command("witness-key")
@config_option
@click.option("--name", required=True, help="The witness name, e.g. caw.example/witness.")
def witness_key(config_path: Path, name: str) -> None:
    """Create this gateway's witness key and print its verifier key, for the hub operator's
    `livcr hub witness add`. The gateway cosigns the checkpoints it verified from then on."""
    config = load(config_path)
    try:
        witness = create_witness_key(config.path("."), name, os.urandom(32))
    except (FileExistsError, LivcrError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(witness.public.vkey())


COMMANDS = (witness_key,)
