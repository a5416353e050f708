"""`livcr hub ...`: the operator's commands."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.errors import LivcrError
from livcr_exchange.roles import DIRECTORY_ROLES, Role
from livcr_exchange.service.cli_env import root_passphrase
from livcr_exchange.service.lazy_commands import LazyGroup
from livcr_exchange.times import iso8601
from livcr_exchange.wire import check_ident

from .cli_common import config_option, load, root_key, root_key_option
from .keyfiles import KeyFileError, read_log_key
from .store.base import StoreError

if TYPE_CHECKING:
    from .operator import PublicBundle

# The server, the store drivers and the console are imported by the commands that use them, and
# these groups' modules when they are asked for: `livcr hub keys` prints a key in a fraction of
# the time it would take to import them all.
LAZY_COMMANDS = {
    "status": "hub.cli_records",
    "log": "hub.cli_records",
    "audit": "hub.cli_records",
    "directory": "hub.cli_records",
    "config": "hub.cli_records",
    "purge": "hub.cli_records",
    "witness": "hub.witness_cli",
    "operator": "hub.console.cli",
    "deliveries": "hub.console.cli",
}

MIN_ROOT_PASSPHRASE_CHARS = 12  # a few words; the key file's Argon2id cost does the rest


class _HubGroup(LazyGroup):
    """Answers a store failure (database unreachable, schema not migrated) in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(f"store: {exc}") from exc


@click.group("hub", cls=_HubGroup, lazy=LAZY_COMMANDS)
def hub_group() -> None:
    """Run and operate a municipal hub."""


@hub_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cell-id", required=True, help="The cell's identifier, e.g. `gent`.")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.option(
    "--dsn",
    default=None,
    help="Keep the store in this PostgreSQL database (postgresql://...) instead of SQLite.",
)
@click.option(
    "--console-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="The operator's console's port on 127.0.0.1 [default: --port + 100].",
)
def init(
    directory: Path, cell_id: str, port: int, dsn: str | None, console_port: int | None
) -> None:
    """Create a cell in DIRECTORY: root key, log key, config, console operator `admin`; the
    store is made on first use.

    The root key is encrypted under a passphrase ($LIVCR_ROOT_PASSPHRASE or a prompt); keep it
    offline once participants are enrolled. The console operator's password is
    $LIVCR_OPERATOR_PASSWORD, or a random one shown once. With --dsn, run `livcr hub migrate`
    next.
    """
    try:
        check_ident(cell_id, "cell id")
    except LivcrError as exc:
        raise click.BadParameter(str(exc), param_hint="--cell-id") from exc
    if dsn is not None and (
        not dsn.startswith(("postgresql://", "postgres://")) or any(c in dsn for c in "\r\n")
    ):
        raise click.BadParameter("a postgresql:// URL on one line", param_hint="--dsn")
    from . import operator  # noqa: PLC0415  (see LAZY_COMMANDS)
    from .console import cli as console_cli  # noqa: PLC0415

    passphrase = root_passphrase(confirm=True)
    if len(passphrase.decode("utf-8")) < MIN_ROOT_PASSPHRASE_CHARS:
        raise click.ClickException(
            f"the root key passphrase must be at least {MIN_ROOT_PASSPHRASE_CHARS} characters:"
            " it guards the key that vouches for every participant"
        )
    try:
        made = operator.init_cell(
            directory,
            cell_id,
            passphrase,
            port=port,
            dsn=dsn,
            console_port=console_port or (port + 100 if port <= 65435 else port - 100),
        )
    except FileExistsError as exc:
        raise click.ClickException(
            f"{exc.args[0]} exists: {directory} already holds a cell"
        ) from exc
    click.echo(f"config:   {made['config']}")
    click.echo(f"root key: {made['root_key']}  (secret in root.secret, passphrase-protected)")
    click.echo(f"log key:  {made['log_key']}  (secret in log.key, mode 0600)")
    password = console_cli.create_first_operator(load(Path(made["config"])), "admin")
    shown = f"password {password} (shown once)" if password else "password from the environment"
    click.echo(f"console:  operator admin, {shown}")
    click.echo(f"origin:   {default_origin(cell_id)}  (hand it to gateways with the log key)")


@hub_group.command("serve")
@config_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Listen on this port instead of the config's (several processes, one config).",
)
def serve(config_path: Path, port: int | None) -> None:
    """Run the hub until interrupted (SIGINT/SIGTERM stop it cleanly).

    Several processes may serve one PostgreSQL store: each on its own port, behind a load
    balancer; they share the queue, the log and pushes.
    """
    from .serving import serve_until_stopped  # noqa: PLC0415  (see LAZY_COMMANDS)

    serve_until_stopped(load(config_path), port)


@hub_group.command("migrate")
@config_option
def migrate(config_path: Path) -> None:
    """Create the store's schema or bring it to this hub's version (safe to repeat).

    PostgreSQL stores need this before the first `serve` and after an upgrade; concurrent runs
    wait for each other. A SQLite store also migrates itself when it opens.
    """
    from livcr_exchange.service.progress import CommandProgress  # noqa: PLC0415

    from . import operator  # noqa: PLC0415  (see LAZY_COMMANDS)

    config = load(config_path)
    with CommandProgress(f"migrating the {config.store.kind} store", None):
        report = asyncio.run(operator.migrate(config))
    if report.applied:
        click.echo(f"{config.store.kind} store: schema {report.before} -> {report.after}")
        for name in report.applied:
            click.echo(f"  applied {name}")
    else:
        click.echo(f"{config.store.kind} store: schema {report.after}, up to date")


@hub_group.command("enrol")
@config_option
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The participant's public bundle (ID.public.json).",
)
@click.option("--role", type=click.Choice(sorted(r.value for r in DIRECTORY_ROLES)), required=True)
@click.option("--organisation", required=True, help="KBO/BCE number, 10 digits.")
@click.option("--purposes", default=None, help="Comma-separated; default: all the role can use.")
@click.option("--valid-days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option(
    "--replace", is_flag=True, help="Replace the entry of a participant enrolled already."
)
@click.option("--reenrol", is_flag=True, help="Enrol a revoked participant again (a new key).")
@root_key_option
def enrol(
    config_path: Path,
    bundle: Path,
    role: str,
    organisation: str,
    purposes: str | None,
    valid_days: int,
    replace: bool,  # noqa: FBT001  (click flag)
    reenrol: bool,  # noqa: FBT001  (click flag)
    root_file: Path | None,
) -> None:
    """Sign a directory entry for a participant's public bundle and publish it.

    A participant enrolled already is replaced only with --replace (which shows what changes),
    a revoked one enrolled again only with --reenrol.
    """
    from . import enrolment, operator  # noqa: PLC0415  (see LAZY_COMMANDS)

    config = load(config_path)
    public = read_bundle(bundle)
    root = root_key(config, root_file)
    chosen = None if purposes is None else [p.strip() for p in purposes.split(",") if p.strip()]

    async def run() -> tuple[Any, Any]:
        async with operator.opened(config) as store:
            previous = enrolment.previous_entry(
                await operator.load_directory(store, config), public.participant_id
            )
            entry = await operator.enrol(
                store,
                config,
                root,
                public,
                role=Role(role),
                organisation=organisation,
                purposes=chosen,
                now=int(time.time()),
                valid_days=valid_days,
                replace=replace,
                reenrol=reenrol,
            )
            return previous, entry

    try:
        previous, entry = asyncio.run(run())
    except (LivcrError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _report_enrolment(previous, entry, public, shown=replace and not reenrol)


def _report_enrolment(previous: Any, entry: Any, public: PublicBundle, *, shown: bool) -> None:
    """Say what was enrolled; with ``shown``, what changed from ``previous`` first."""
    from . import enrolment  # noqa: PLC0415  (see LAZY_COMMANDS)

    if previous is not None and shown:
        for change in enrolment.enrolment_changes(previous, entry):
            click.echo(f"  {change}")
    click.echo(
        f"enrolled {entry.participant_id} as {entry.role.value} ({entry.organisation}), "
        f"{len(entry.allowed_purposes)} purposes, {len(public.prekeys)} prekeys"
    )


def read_bundle(path: Path) -> PublicBundle:
    """A participant's public bundle. Raises click.ClickException when it is not one."""
    from . import operator  # noqa: PLC0415  (see LAZY_COMMANDS)

    try:
        return operator.PublicBundle.from_json(json.loads(path.read_text()))
    except (LivcrError, KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"{path}: not a valid public bundle: {exc}") from exc


@hub_group.command("revoke")
@config_option
@click.argument("participant_id")
@click.option("--reason", default="revoked by the cell", show_default=True)
@root_key_option
def revoke(config_path: Path, participant_id: str, reason: str, root_file: Path | None) -> None:
    """Revoke a participant's keys from now on: it receives nothing sent afterwards."""
    from . import operator  # noqa: PLC0415  (see LAZY_COMMANDS)

    config = load(config_path)
    root = root_key(config, root_file)

    async def run() -> tuple[int, Any]:
        async with operator.opened(config) as store:
            done = await operator.revoke(
                store, config, root, participant_id, reason=reason, at=int(time.time())
            )
            return len(done), await operator.load_directory(store, config)

    try:
        count, directory = asyncio.run(run())
    except (LookupError, LivcrError) as exc:
        raise click.ClickException(str(exc)) from exc
    if count:
        click.echo(f"revoked {count} key(s) of {participant_id}")
        return
    earlier = [r for r in directory.revocations if r.participant_id == participant_id]
    first = min(earlier, key=lambda r: r.revoked_at)
    click.echo(
        f"{participant_id} was revoked already at {iso8601(first.revoked_at)}"
        f" ({first.reason}); nothing changed"
    )


@hub_group.command("keys")
@config_option
@click.argument("which", type=click.Choice(["root", "log", "origin"]), required=False)
def keys(config_path: Path, which: str | None) -> None:
    """The cell's public keys, which every gateway is configured with (`livcr gateway init`).

    With WHICH, print that key alone (for a script): `root` signs the directory, `log` the
    checkpoints, `origin` the log's origin line (gateways name it in every request).
    """
    config = load(config_path)
    try:
        log_key = read_log_key(config.path(config.hub.log_key_file)).public.to_text()
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    found = {"root": config.hub.root_key, "log": log_key, "origin": config.origin}
    if which is not None:
        click.echo(found[which])
        return
    click.echo(f"root key: {found['root']}\nlog key:  {found['log']}\norigin:   {found['origin']}")


COMMANDS = (hub_group,)
