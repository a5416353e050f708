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
import structlog
from aiohttp import web

from livcr_exchange.errors import LivcrError
from livcr_exchange.roles import DIRECTORY_ROLES, Role
from livcr_exchange.service.cli_env import CONFIG_ENV, passphrase_from
from livcr_exchange.service.logs import configure_logging
from livcr_exchange.service.progress import CommandProgress
from livcr_exchange.service.sdnotify import sd_notify
from livcr_exchange.times import iso8601
from livcr_exchange.wire import check_ident

from . import operator, readiness
from .app import create_app
from .config import ConfigError, HubConfig, load_config
from .keyfiles import KeyFileError, read_log_key, read_root_key
from .store.base import StoreError

ROOT_PASSPHRASE_ENV = "LIVCR_ROOT_PASSPHRASE"  # noqa: S105  (the variable's name, not a secret)
MIN_ROOT_PASSPHRASE_CHARS = 12  # a few words; the key file's Argon2id cost does the rest

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


def root_passphrase(*, confirm: bool = False) -> bytes:
    """From $LIVCR_ROOT_PASSPHRASE, else typed at the terminal. Raises click.ClickException."""
    return passphrase_from(ROOT_PASSPHRASE_ENV, "Root key passphrase", confirm=confirm)


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
    passphrase = root_passphrase(confirm=True)
    if len(passphrase.decode("utf-8")) < MIN_ROOT_PASSPHRASE_CHARS:
        raise click.ClickException(
            f"the root key passphrase must be at least {MIN_ROOT_PASSPHRASE_CHARS} characters:"
            " it guards the key that vouches for every participant"
        )
    try:
        made = operator.init_cell(directory, cell_id, passphrase, port=port, dsn=dsn)
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
    facts = {
        "version": operator.package_version(),
        "cell": config.hub.cell_id,
        "store": store_description(config),
        "listen": f"{'https' if ssl_context else 'http'}://{config.hub.host}:"
        f"{config.hub.port if port is None else port}",
    }
    log = structlog.get_logger("livcr.hub")
    web.run_app(
        app,
        host=config.hub.host,
        port=config.hub.port if port is None else port,
        ssl_context=ssl_context,
        access_log=None,
        # aiohttp announces here once it listens: a JSON line instead of its text banner, and
        # readiness for systemd (Type=notify).
        print=lambda _banner: started(log, facts),
    )
    log.info("hub stopped", **facts)


def started(log: Any, facts: dict[str, str]) -> None:
    log.info("hub started", **facts)
    sd_notify("READY=1", f"STATUS=serving {facts['listen']}")


def store_description(config: HubConfig) -> str:
    """Which store, for a log line: a SQLite file's path; never a DSN (it may hold a password)."""
    if config.store.kind == "sqlite":
        return f"sqlite:{config.path(config.store.path).resolve()}"
    return "postgresql"


@hub_group.command("migrate")
@config_option
def migrate(config_path: Path) -> None:
    """Create the store's schema or bring it to this hub's version (safe to repeat).

    PostgreSQL stores need this before the first `serve` and after an upgrade; concurrent runs
    wait for each other. A SQLite store also migrates itself when it opens.
    """
    config = load(config_path)
    with CommandProgress(f"migrating the {config.store.kind} store", None):
        report = asyncio.run(operator.migrate(config))
    if report.applied:
        click.echo(f"{config.store.kind} store: schema {report.before} -> {report.after}")
        for name in report.applied:
            click.echo(f"  applied {name}")
    else:
        click.echo(f"{config.store.kind} store: schema {report.after}, up to date")


@hub_group.command("purge")
@config_option
@click.option("--dry-run", is_flag=True, help="Only list the cases whose data would go.")
def purge(config_path: Path, dry_run: bool) -> None:  # noqa: FBT001  (click flag)
    """Delete now what retention says must go: the envelopes and leaf data of cases closed more
    than retention_days ago (the serving hub also does it in the background)."""
    config = load(config_path)
    now = int(time.time())

    async def run(progress: CommandProgress) -> tuple[list[tuple[str, int]], int]:
        async with operator.opened(config) as store:
            due = await operator.cases_due_for_purge(store, now)
            if dry_run or not due:
                return due, 0
            return due, await operator.purge(store, now, on_rows=progress.advance)

    with CommandProgress("purging (rows removed)", None) as progress:
        due, removed = asyncio.run(run(progress))
    for case_ref, at in due:
        click.echo(f"  {case_ref}: retention over since {iso8601(at)}")
    if dry_run:
        click.echo(f"would purge {len(due)} case(s); nothing deleted (--dry-run)")
    else:
        click.echo(f"purged {len(due)} case(s): {removed} rows deleted; the log still verifies")


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
    replace: bool,  # noqa: FBT001  (click flag)
    reenrol: bool,  # noqa: FBT001  (click flag)
    root_file: Path | None,
) -> None:
    """Sign a directory entry for a participant's public bundle and publish it.

    A participant enrolled already is replaced only with --replace (which shows what changes),
    a revoked one enrolled again only with --reenrol.
    """
    config = load(config_path)
    try:
        public = operator.PublicBundle.from_json(json.loads(bundle.read_text()))
    except (LivcrError, KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"{bundle}: not a valid public bundle: {exc}") from exc
    root = root_key(config, root_file)
    chosen = None if purposes is None else [p.strip() for p in purposes.split(",") if p.strip()]

    async def run() -> tuple[Any, Any]:
        async with operator.opened(config) as store:
            previous = operator.previous_entry(
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
    if previous is not None and replace and not reenrol:
        for change in operator.enrolment_changes(previous, entry):
            click.echo(f"  {change}")
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
@click.option(
    "--wait-ready",
    type=click.FloatRange(0, 3600),
    default=None,
    metavar="SECONDS",
    help="First wait up to SECONDS for the hub to serve; exit 3 if it does not.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="The serving process's port, when not the config's (`serve --port`).",
)
def status(
    config_path: Path,
    as_json: bool,  # noqa: FBT001  (click flag)
    wait_ready: float | None,
    port: int | None,
) -> None:
    """Serving or not, version, log, participants, revocations, cases and queue depths."""
    config = load(config_path)
    url = readiness.hub_url(config, port)
    if wait_ready is None:
        serving = readiness.probe(url) is not None
    else:
        try:
            readiness.wait_ready(url, wait_ready)
        except readiness.NotReady as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(3)
        serving = True

    async def run() -> dict[str, Any]:
        async with operator.opened(config) as store:
            return await operator.status(store, config, int(time.time()))

    report = asyncio.run(run())
    report["serving"] = {"url": url, "ready": serving}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in status_lines(report):
        click.echo(line)


def status_lines(report: dict[str, Any]) -> list[str]:
    """``hub status`` for a person to read."""
    where = report["serving"]["url"]
    serving = f"serving at {where}" if report["serving"]["ready"] else f"NOT serving at {where}"
    checkpoint = report["last_checkpoint"]
    if checkpoint is None:
        signed = "no checkpoint signed yet"
    else:
        at = checkpoint["logged_at"] or "time deleted by retention"
        signed = f"last checkpoint at size {checkpoint['size']} ({at})"
    lines = [
        (
            f"cell {report['cell_id']}: {serving}; livcr-exchange {report['version']},"
            f" store schema {report['schema']}"
        ),
        (
            f"log size {report['log_size']}, {signed}; {report['queue']['deliveries_pending']}"
            f" deliveries pending ({report['queue']['envelopes']} envelopes)"
        ),
        "participants:",
    ]
    lines += [
        f"  {p['id']:<20} {p['role']:<16} {p['organisation']:<12} {p['status']},"
        f" enrolled until {p['enrolled_until']}"
        for p in report["participants"]
    ]
    if report["revocations"]:
        lines.append("revocations:")
        lines += [
            f"  {r['id']:<20} key {r['key_id'][:16]} revoked at {r['revoked_at']}: {r['reason']}"
            for r in report["revocations"]
        ]
    states = ", ".join(f"{k}: {v}" for k, v in report["open_cases_by_state"].items()) or "none"
    lines.append(f"open cases: {states}; closed: {report['closed_cases']}")
    return lines


@hub_group.group("directory")
def directory_group() -> None:
    """The cell's signed directory."""


@directory_group.command("export")
@config_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON here (default: standard output).",
)
def directory_export(config_path: Path, out: Path | None) -> None:
    """The signed directory as JSON, for `livcr inspect --directory`."""
    config = load(config_path)

    async def run() -> dict[str, Any]:
        async with operator.opened(config) as store:
            return await operator.directory_listing(store, config)

    try:
        text = json.dumps(asyncio.run(run()), indent=2) + "\n"
    except LivcrError as exc:
        raise click.ClickException(f"the stored directory does not verify: {exc}") from exc
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote the directory of cell {config.hub.cell_id} to {out}", err=True)


@hub_group.group("config")
def config_group() -> None:
    """The hub's configuration file."""


@config_group.command("check")
@config_option
def config_check(config_path: Path) -> None:
    """Validate the configuration and the files it names; say what it sets up."""
    config = load(config_path)
    try:
        read_log_key(config.path(config.hub.log_key_file))
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if config.tls is not None:
        for name in (config.tls.cert_file, config.tls.key_file):
            if not config.path(name).is_file():
                raise click.ClickException(
                    f"{config_path}: tls file {config.path(name)} is missing"
                )
    store = (
        f"SQLite {config.path(config.store.path)}"
        if config.store.kind == "sqlite"
        else "PostgreSQL (its address is in store.dsn)"
    )
    click.echo(f"{config_path}: valid")
    click.echo(f"  cell {config.hub.cell_id}, serving {readiness.hub_url(config)}")
    click.echo(f"  store: {store}; log key: {config.path(config.hub.log_key_file)}")


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

    async def run(progress: CommandProgress) -> operator.LogReport:
        async with operator.opened(config) as store:
            return await operator.verify_log(
                store, config, log_public, on_size=progress.set_total, on_leaves=progress.advance
            )

    with CommandProgress("verifying the log's leaves", None) as progress:
        report = asyncio.run(run(progress))
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
    # Streamed: each record is written as it is read, never the whole log in memory.
    handle = (
        sys.stdout
        if out is None
        else os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w")
    )

    async def run(progress: CommandProgress) -> int:
        written = 0
        async with operator.opened(config) as store:
            progress.set_total(await store.tree_size())
            async for record in operator.export_audit(
                store, config, organisation=organisation, case_ref=case_ref
            ):
                handle.write(json.dumps(record, sort_keys=True) + "\n")
                written += 1
                progress.set(record["index"] + 1)
        return written

    try:
        with CommandProgress("exporting the log's records", None) as progress:
            count = asyncio.run(run(progress))
    finally:
        if out is not None:
            handle.close()
    if out is not None:
        click.echo(f"wrote {count} records to {out}", err=True)


COMMANDS = (hub_group,)
