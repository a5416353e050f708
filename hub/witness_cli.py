"""`livcr hub witness ...`: the operator names the cell's witnesses and quorum (spec §10.8)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from livcr_exchange.audit.cosignature import WitnessKey
from livcr_exchange.errors import LivcrError
from livcr_exchange.witness_policy import WitnessPolicy, empty_policy

from . import operator
from .cli_common import config_option, load, root_key, root_key_option
from .config import HubConfig
from .witnessing import current_policy, publish_policy, read_witness_urls, write_witness_urls


@click.group("witness")
def witness_group() -> None:
    """The cell's witnesses and quorum, signed by the root key and served with the directory."""


def _current(config: HubConfig) -> WitnessPolicy:
    async def run() -> WitnessPolicy:
        async with operator.opened(config) as store:
            found = await current_policy(store, config)
        return empty_policy(config.hub.cell_id) if found is None else found[0]

    return asyncio.run(run())


def _publish(
    config: HubConfig, root_file: Path | None, witnesses: list[WitnessKey], quorum: int
) -> WitnessPolicy:
    current = _current(config)
    try:
        policy = WitnessPolicy(
            config.hub.cell_id,
            current.sequence + 1,
            quorum,
            tuple(sorted(witnesses, key=lambda w: w.name)),
        )
    except LivcrError as exc:
        raise click.ClickException(str(exc)) from exc
    root = root_key(config, root_file)

    async def run() -> None:
        async with operator.opened(config) as store:
            await publish_policy(store, config, root, policy, int(time.time()))

    asyncio.run(run())
    return policy


def _describe(policy: WitnessPolicy) -> str:
    return f"witness policy {policy.sequence}: quorum {policy.quorum} of {len(policy.witnesses)}"


@witness_group.command("add")
@config_option
@click.argument("vkey")
@click.option(
    "--url",
    default=None,
    help="Where the witness takes add-checkpoint; none for a gateway, which sends its own.",
)
@click.option("--quorum", type=click.IntRange(0, 16), default=None, help="A new quorum k.")
@root_key_option
def add(config_path: Path, vkey: str, url: str, quorum: int | None, root_file: Path | None) -> None:
    """Add (or re-key) the witness with verifier key VKEY (`livcr witness vkey`)."""
    config = load(config_path)
    try:
        key = WitnessKey.from_vkey(vkey)
    except LivcrError as exc:
        raise click.BadParameter(str(exc), param_hint="VKEY") from exc
    current = _current(config)
    witnesses = [w for w in current.witnesses if w.name != key.name] + [key]
    policy = _publish(config, root_file, witnesses, current.quorum if quorum is None else quorum)
    urls = read_witness_urls(config)
    urls.pop(key.name, None)
    write_witness_urls(config, urls if url is None else {**urls, key.name: url})
    click.echo(_describe(policy))


@witness_group.command("remove")
@config_option
@click.argument("name")
@root_key_option
def remove(config_path: Path, name: str, root_file: Path | None) -> None:
    """Remove the witness NAME; the quorum drops to the witnesses left if it was above."""
    config = load(config_path)
    current = _current(config)
    witnesses = [w for w in current.witnesses if w.name != name]
    if len(witnesses) == len(current.witnesses):
        raise click.ClickException(f"{name} is not a witness of this cell")
    policy = _publish(config, root_file, witnesses, min(current.quorum, len(witnesses)))
    urls = read_witness_urls(config)
    urls.pop(name, None)
    write_witness_urls(config, urls)
    click.echo(_describe(policy))


@witness_group.command("quorum")
@config_option
@click.argument("k", type=click.IntRange(0, 16))
@root_key_option
def quorum(config_path: Path, k: int, root_file: Path | None) -> None:
    """Require K witness cosignatures before a receipt counts as witnessed."""
    config = load(config_path)
    policy = _publish(config, root_file, list(_current(config).witnesses), k)
    click.echo(_describe(policy))


@witness_group.command("list")
@config_option
def list_witnesses(config_path: Path) -> None:
    """The policy in force and where each witness is asked."""
    config = load(config_path)
    policy = _current(config)
    urls = read_witness_urls(config)
    click.echo(_describe(policy))
    for witness in policy.witnesses:
        click.echo(f"  {witness.vkey()}  {urls.get(witness.name, '(no URL)')}")


COMMANDS = (witness_group,)
