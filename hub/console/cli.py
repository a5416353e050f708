"""`livcr hub operator ...` and `livcr hub deliveries ...`: console credentials, stuck queues."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from datetime import datetime
from pathlib import Path

import click

from livcr_exchange.audit.leaves import DropReason
from livcr_exchange.service.cli_env import passphrase_from

from .. import operator as hub_operator
from ..cli_common import config_option, load
from ..config import HubConfig
from . import deliveries
from .operators import OperatorError, add_operator, remove_operator
from .queries import QueuedDelivery

OPERATOR_PASSWORD_ENV = "LIVCR_OPERATOR_PASSWORD"  # noqa: S105  (the variable's name)


def operators_path(config: HubConfig) -> Path:
    """Raises click.ClickException when the config has no [console] section."""
    if config.console is None:
        raise click.ClickException("the config has no [console] section: no operator console")
    return config.path(config.console.operators_file)


def create_first_operator(config: HubConfig, name: str) -> str | None:
    """Create ``name`` with $LIVCR_OPERATOR_PASSWORD or a random password; return the password
    when it was generated here (the caller shows it once)."""
    given = os.environ.get(OPERATOR_PASSWORD_ENV)
    password = given or secrets.token_urlsafe(18)
    try:
        add_operator(operators_path(config), name, password)
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from exc
    return None if given else password


@click.group("operator")
def operator_group() -> None:
    """Credentials of the operator's console."""


@operator_group.command("add")
@config_option
@click.argument("name")
def add(config_path: Path, name: str) -> None:
    """Add NAME (or set its password): $LIVCR_OPERATOR_PASSWORD, or a prompt."""
    path = operators_path(load(config_path))
    password = passphrase_from(OPERATOR_PASSWORD_ENV, "Password", confirm=True).decode("utf-8")
    try:
        add_operator(path, name, password)
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"operator {name}: credential stored in {path}")


@operator_group.command("remove")
@config_option
@click.argument("name")
def remove(config_path: Path, name: str) -> None:
    """Remove NAME; the console refuses its sessions from its next request on."""
    path = operators_path(load(config_path))
    try:
        found = remove_operator(path, name)
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from exc
    if not found:
        raise click.ClickException(f"no operator {name}")
    click.echo(f"operator {name} removed")


@click.group("deliveries")
def deliveries_group() -> None:
    """Pending deliveries: list a participant's queue, drop a stuck one."""


@deliveries_group.command("list")
@config_option
@click.argument("participant_id")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def list_deliveries(config_path: Path, participant_id: str, limit: int) -> None:
    """PARTICIPANT_ID's pending deliveries, oldest first: number, age, size."""
    config = load(config_path)

    async def run() -> list[QueuedDelivery]:
        async with hub_operator.opened(config) as store:
            return await deliveries.list_queue(store, participant_id, limit)

    now = int(time.time())
    rows = asyncio.run(run())
    click.echo(f"{'delivery':>10}  {'accepted (local time)':<25}  {'age':>10}  {'bytes':>12}")
    for row in rows:
        accepted = datetime.fromtimestamp(row.accepted_at).astimezone().isoformat()
        click.echo(
            f"{row.seq:>10}  {accepted:<25}  {_age(now - row.accepted_at):>10}  {row.size:>12}"
        )
    click.echo(f"{len(rows)} shown, oldest first")


@deliveries_group.command("drop")
@config_option
@click.argument("participant_id")
@click.argument("delivery", type=int)
@click.option("--reason", type=click.Choice([r.value for r in DropReason]), required=True)
@click.option("--operator", "operator_name", default="cli", show_default=True)
def drop_delivery(
    config_path: Path, participant_id: str, delivery: int, reason: str, operator_name: str
) -> None:
    """Drop DELIVERY (a number from `list`) from PARTICIPANT_ID's queue; logged as a leaf."""
    config = load(config_path)

    async def run() -> deliveries.Dropped:
        async with hub_operator.opened(config) as store:
            return await deliveries.drop(
                store,
                participant_id,
                delivery,
                DropReason(reason),
                now=int(time.time()),
                operator=operator_name,
            )

    try:
        dropped = asyncio.run(run())
    except deliveries.NoSuchDelivery as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dropped delivery {delivery} ({dropped.size} bytes); log leaf {dropped.leaf_index}")


def _age(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


COMMANDS = (operator_group, deliveries_group)
