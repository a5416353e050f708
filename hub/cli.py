"""`livcr hub ...`: the operator's commands."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import click
from aiohttp import web

from livcr_exchange.errors import LivcrError
from livcr_exchange.roles import DIRECTORY_ROLES, Role
from livcr_exchange.service.logs import configure_logging
from livcr_exchange.wire import check_ident

from . import operator
from .app import create_app
from .config import ConfigError, HubConfig, load_config
from .keyfiles import KeyFileError, read_log_key, read_root_key
from .store.base import StoreError
from .witness_cli import witness_group

ROOT_PASSPHRASE_ENV = "LIVCR_ROOT_PASSPHRASE"  # noqa: S105  (the variable's name, not a secret)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The hub's TOML file (made by `livcr hub init`).",
)


def load(config_path: Path) -> HubConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def root_passphrase(*, confirm: bool = False) -> bytes:
    value = os.environ.get(ROOT_PASSPHRASE_ENV)
    if value is None:
        value = click.prompt("Root key passphrase", hide_input=True, confirmation_prompt=confirm)
    return value.encode("utf-8")


def root_key(config: HubConfig, root_file: Path | None) -> Any:
    path = root_file or config.path("root.secret")
    try:
        return read_root_key(path, root_passphrase())
    except (KeyFileError, LivcrError) as exc:
        raise click.ClickException(str(exc)) from exc


class _HubGroup(click.Group):
    """Answers a store failure (database unreachable, schema not migrated) in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(f"store: {exc}") from exc


@click.group("hub", cls=_HubGroup)
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
def init(directory: Path, cell_id: str, port: int, dsn: str | None) -> None:
    """Create a cell in DIRECTORY: root key, log key, config; the store is made on first use.

    The root key is encrypted under a passphrase ($LIVCR_ROOT_PASSPHRASE or a prompt); keep it
    offline once participants are enrolled. With --dsn, run `livcr hub migrate` next.
    """
    try:
        check_ident(cell_id, "cell id")
    except LivcrError as exc:
        raise click.BadParameter(str(exc), param_hint="--cell-id") from exc
    if dsn is not None and (
        not dsn.startswith(("postgresql://", "postgres://")) or any(c in dsn for c in "\r\n")
    ):
        raise click.BadParameter("a postgresql:// URL on one line", param_hint="--dsn")
    try:
        made = operator.init_cell(
            directory, cell_id, root_passphrase(confirm=True), port=port, dsn=dsn
        )
    except FileExistsError as exc:
        raise click.ClickException(
            f"{exc.args[0]} exists: {directory} already holds a cell"
        ) from exc
    click.echo(f"config:   {made['config']}")
    click.echo(f"root key: {made['root_key']}  (secret in root.secret, passphrase-protected)")
    click.echo(f"log key:  {made['log_key']}  (secret in log.key, mode 0600)")


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
    config = load(config_path)
    configure_logging(config.logging.format, config.logging.level)
    try:
        log_key = read_log_key(config.path(config.hub.log_key_file))
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    ssl_context = None
    if config.tls is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(
            config.path(config.tls.cert_file), config.path(config.tls.key_file)
        )
    app = create_app(config, store=operator.open_store(config), log_key=log_key)
    web.run_app(
        app,
        host=config.hub.host,
        port=config.hub.port if port is None else port,
        ssl_context=ssl_context,
        access_log=None,
        print=lambda text: click.echo(text, err=True),
    )


@hub_group.command("migrate")
@config_option
def migrate(config_path: Path) -> None:
    """Create the store's schema or bring it to this hub's version (safe to repeat).

    PostgreSQL stores need this before the first `serve` and after an upgrade; concurrent runs
    wait for each other. A SQLite store also migrates itself when it opens.
    """
    config = load(config_path)
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
    "--root-key", "root_file", type=click.Path(dir_okay=False, path_type=Path), default=None
)
def enrol(
    config_path: Path,
    bundle: Path,
    role: str,
    organisation: str,
    purposes: str | None,
    valid_days: int,
    root_file: Path | None,
) -> None:
    """Sign a directory entry for a participant's public bundle and publish it."""
    config = load(config_path)
    try:
        public = operator.PublicBundle.from_json(json.loads(bundle.read_text()))
    except (LivcrError, KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"{bundle}: not a valid public bundle: {exc}") from exc
    root = root_key(config, root_file)
    chosen = None if purposes is None else [p.strip() for p in purposes.split(",") if p.strip()]

    async def run() -> Any:
        async with operator.opened(config) as store:
            return await operator.enrol(
                store,
                config,
                root,
                public,
                role=Role(role),
                organisation=organisation,
                purposes=chosen,
                now=int(time.time()),
                valid_days=valid_days,
            )

    try:
        entry = asyncio.run(run())
    except (LivcrError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"enrolled {entry.participant_id} as {entry.role.value} ({entry.organisation}), "
        f"{len(entry.allowed_purposes)} purposes, {len(public.prekeys)} prekeys"
    )


@hub_group.command("revoke")
@config_option
@click.argument("participant_id")
@click.option("--reason", default="revoked by the cell", show_default=True)
@click.option(
    "--root-key", "root_file", type=click.Path(dir_okay=False, path_type=Path), default=None
)
def revoke(config_path: Path, participant_id: str, reason: str, root_file: Path | None) -> None:
    """Revoke a participant's keys from now on: it receives nothing sent afterwards."""
    config = load(config_path)
    root = root_key(config, root_file)

    async def run() -> int:
        async with operator.opened(config) as store:
            done = await operator.revoke(
                store, config, root, participant_id, reason=reason, at=int(time.time())
            )
            return len(done)

    try:
        count = asyncio.run(run())
    except (LookupError, LivcrError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {count} key(s) of {participant_id}")


@hub_group.command("keys")
@config_option
@click.argument("which", type=click.Choice(["root", "log"]), required=False)
def keys(config_path: Path, which: str | None) -> None:
    """The cell's public keys, which every gateway is configured with (`livcr gateway init`).

    With WHICH, print that key alone (for a script): `root` signs the directory, `log` the
    checkpoints.
    """
    config = load(config_path)
    try:
        log_key = read_log_key(config.path(config.hub.log_key_file)).public.to_text()
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    found = {"root": config.hub.root_key, "log": log_key}
    if which is not None:
        click.echo(found[which])
        return
    click.echo(f"root key: {found['root']}\nlog key:  {found['log']}")


@hub_group.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path, as_json: bool) -> None:  # noqa: FBT001  (click flag)
    """Participants, open cases by state, queue depths, log size."""
    config = load(config_path)

    async def run() -> dict[str, Any]:
        async with operator.opened(config) as store:
            return await operator.status(store, config, int(time.time()))

    report = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"cell {report['cell_id']}: log size {report['log_size']}, "
        f"{report['queue']['deliveries_pending']} deliveries pending "
        f"({report['queue']['envelopes']} envelopes)"
    )
    for p in report["participants"]:
        click.echo(f"  {p['id']:<20} {p['role']:<16} {p['organisation']:<12} {p['status']}")
    states = ", ".join(f"{k}: {v}" for k, v in report["open_cases_by_state"].items()) or "none"
    click.echo(f"open cases: {states}; closed: {report['closed_cases']}")


@hub_group.group("log")
def log_group() -> None:
    """The transparency log."""


@log_group.command("verify")
@config_option
@click.option(
    "--store",
    "store_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Verify this copy of the store instead of the configured one.",
)
def log_verify(config_path: Path, store_path: Path | None) -> None:
    """Recompute the tree from every leaf and check every stored checkpoint."""
    config = load(config_path)
    try:
        log_public = read_log_key(config.path(config.hub.log_key_file)).public.raw
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if store_path is not None:
        config = HubConfig(
            config.hub,
            type(config.store)(path=str(store_path.resolve())),
            config.logging,
            config.tls,
            config.base_dir,
        )

    async def run() -> operator.LogReport:
        async with operator.opened(config) as store:
            return await operator.verify_log(store, config, log_public)

    report = asyncio.run(run())
    for problem in report.problems:
        click.echo(f"PROBLEM {problem}")
    verdict = "verified" if report.ok else "FAILED"
    click.echo(
        f"log {verdict}: {report.leaves} leaves ({report.retained} retained by hash only), "
        f"{report.checkpoints} checkpoints"
    )
    if not report.ok:
        sys.exit(1)


@hub_group.group("audit")
def audit_group() -> None:
    """Content-free audit records for a supervisor or DPO."""


@audit_group.command("export")
@config_option
@click.option("--organisation", default=None, help="Only records involving this KBO number.")
@click.option("--case", "case_ref", default=None, help="Only records of this case reference.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JSON lines here (default: standard output).",
)
def audit_export(
    config_path: Path, organisation: str | None, case_ref: str | None, out: Path | None
) -> None:
    """Export log records as JSON lines: who sent what kind of message to whom, when. No content."""
    config = load(config_path)

    async def run() -> list[dict[str, Any]]:
        async with operator.opened(config) as store:
            return [
                r
                async for r in operator.export_audit(
                    store, config, organisation=organisation, case_ref=case_ref
                )
            ]

    records = asyncio.run(run())
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    if out is None:
        click.echo(lines, nl=False)
    else:
        out.write_text(lines)
        click.echo(f"wrote {len(records)} records to {out}", err=True)


hub_group.add_command(witness_group)

COMMANDS = (hub_group,)
