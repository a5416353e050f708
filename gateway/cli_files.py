"""The gateway's files, read without starting it: `livcr gateway config check` and
`livcr gateway directory export`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from livcr_exchange.errors import LivcrError

from .cli_client import api_address, config_option, load, read_token
from .store import GatewayStore, StoreLocked, StoreRefused, StoreTooNew
from .trust import DIRECTORY_META_KEY, TrustFailure, cached_directory


@click.group("config")
def config_group() -> None:
    """The gateway's configuration file."""


@config_group.command("check")
@config_option
def config_check(config_path: Path) -> None:
    """Validate the configuration and the files it names; say what it sets up."""
    config = load(config_path)
    read_token(config)
    for name in (config.gateway.key_file, config.gateway.local_key_file):
        if not config.path(name).is_file():
            raise click.ClickException(f"{config_path}: {config.path(name)} is missing")
    _, _, where = api_address(config)
    click.echo(f"{config_path}: valid")
    click.echo(
        f"  {config.participant_id} in cell {config.gateway.cell_id},"
        f" hub {config.gateway.hub_url}, local API {where}"
    )


@click.group("directory")
def directory_group() -> None:
    """The cell directory this gateway verified last."""


@directory_group.command("export")
@config_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON here (default: standard output).",
)
def directory_export(config_path: Path, out: Path | None) -> None:
    """The directory this gateway verified last, as JSON, for `livcr inspect --directory`."""
    config = load(config_path)

    async def run() -> str | None:
        store = GatewayStore(config.path(config.gateway.database))
        await store.open()
        try:
            if await cached_directory(store, config.gateway.cell_id, config.root_key) is None:
                return None
            return await store.get_meta(DIRECTORY_META_KEY)
        finally:
            await store.close()

    try:
        kept = asyncio.run(run())
    except (LivcrError, TrustFailure) as exc:
        raise click.ClickException(f"the kept directory does not verify: {exc}") from exc
    except (StoreLocked, StoreRefused, StoreTooNew) as exc:
        raise click.ClickException(str(exc)) from exc
    if kept is None:
        raise click.ClickException(
            f"{config.participant_id} has not verified a directory yet: start it once"
        )
    listing = json.loads(kept)
    # The directory's statements, in the form `livcr inspect --directory` reads.
    cell = {key: listing.get(key, []) for key in ("cell_id", "root_key", "entries", "revocations")}
    text = json.dumps(cell, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote the directory of cell {config.gateway.cell_id} to {out}", err=True)


COMMANDS = (config_group, directory_group)
