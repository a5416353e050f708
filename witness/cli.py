"""`livcr witness ...`: run a standalone C2SP witness for a cell's log."""

from __future__ import annotations

import os
from pathlib import Path

import click
from aiohttp import web

from livcr_exchange.audit.cosignature import WitnessKey
from livcr_exchange.audit.witness import LogKey
from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.service.logs import configure_logging

from .app import Witness, create_app
from .files import (
    STATE_NAME,
    WitnessConfig,
    WitnessFileError,
    init_folder,
    read_config,
    read_key,
    write_config,
)
from .store import WitnessStore

folder_option = click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The witness's folder (key, configuration, state).",
)


@click.group("witness")
def witness_group() -> None:
    """A standalone witness (C2SP tlog-witness) that a DPO or a supervisor runs."""


@witness_group.command("init")
@folder_option
@click.option("--name", required=True, help="The witness's key name, e.g. dpo.example/witness.")
def init(folder: Path, name: str) -> None:
    """Create the witness's key and configuration; print its verifier key (vkey)."""
    try:
        WitnessKey(name, bytes(32))  # the name's grammar, before any file is written
        key = init_folder(folder, name, os.urandom(32))
    except (FileExistsError, LivcrError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(WitnessKey(name, key.public.raw).vkey())


@witness_group.command("vkey")
@folder_option
def vkey(folder: Path) -> None:
    """Print the witness's verifier key, for the cell's witness policy."""
    try:
        config, key = read_config(folder), read_key(folder)
    except WitnessFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(WitnessKey(config.name, key.public.raw).vkey())


@witness_group.command("add-log")
@folder_option
@click.option("--origin", required=True, help="The log's checkpoint origin line.")
@click.option("--key-name", help="The log's note key name (default: the origin).")
@click.option("--public-key", required=True, help="The log key, livcr-ed25519:... form.")
def add_log(folder: Path, origin: str, key_name: str | None, public_key: str) -> None:
    """Follow a log: cosign its checkpoints from now on."""
    try:
        config = read_config(folder)
        log = LogKey(origin, key_name or origin, IdentityPublicKey.from_text(public_key).raw)
        write_config(folder, WitnessConfig(config.name, {**config.logs, origin: log}))
    except (WitnessFileError, LivcrError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"following {origin}")


@witness_group.command("serve")
@folder_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8480, show_default=True)
def serve(folder: Path, host: str, port: int) -> None:
    """Serve add-checkpoint until stopped; the state survives a kill at any moment."""
    configure_logging()
    try:
        config, key = read_config(folder), read_key(folder)
    except WitnessFileError as exc:
        raise click.ClickException(str(exc)) from exc
    store = WitnessStore(folder / STATE_NAME)
    try:
        witness = Witness(config.name, key, config.logs, store)
        web.run_app(create_app(witness), host=host, port=port, print=None)
    finally:
        store.close()


COMMANDS = [witness_group]
