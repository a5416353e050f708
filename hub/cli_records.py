"""`livcr hub` commands that read and report: status, log, audit, directory, config, purge."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from livcr_exchange.errors import LivcrError
from livcr_exchange.service.files import open_private
from livcr_exchange.service.progress import CommandProgress
from livcr_exchange.times import iso8601

from . import operator, ready_probe, reports
from .cli_common import config_option, load
from .config import HubConfig
from .keyfiles import KeyFileError, read_log_key


@click.command("status")
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
    url = ready_probe.hub_url(config, port)
    context = ready_probe.pinned_context(config)
    if wait_ready is None:
        serving = ready_probe.probe(url, context) is not None
    else:
        try:
            ready_probe.wait_ready(url, wait_ready, context)
        except ready_probe.NotReady as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(3)
        serving = True

    async def run() -> dict[str, Any]:
        async with operator.opened(config) as store:
            return await reports.status(store, config, int(time.time()))

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


@click.group("directory")
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
            return await reports.directory_listing(store, config)

    try:
        text = json.dumps(asyncio.run(run()), indent=2) + "\n"
    except LivcrError as exc:
        raise click.ClickException(f"the stored directory does not verify: {exc}") from exc
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote the directory of cell {config.hub.cell_id} to {out}", err=True)


@click.group("config")
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
    click.echo(f"  cell {config.hub.cell_id}, serving {ready_probe.hub_url(config)}")
    click.echo(f"  store: {store}; log key: {config.path(config.hub.log_key_file)}")


@click.group("log")
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


@click.group("audit")
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
    handle = sys.stdout if out is None else open_private(out)

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


@click.command("purge")
@config_option
@click.option("--dry-run", is_flag=True, help="Only list the cases whose data would go.")
def purge(config_path: Path, dry_run: bool) -> None:  # noqa: FBT001  (click flag)
    """Delete now what retention says must go: the envelopes and leaf data of cases closed more
    than retention_days ago (the serving hub also does it in the background)."""
    config = load(config_path)
    now = int(time.time())

    async def run(progress: CommandProgress) -> tuple[list[tuple[str, int]], int]:
        async with operator.opened(config) as store:
            due = await reports.cases_due_for_purge(store, now)
            if dry_run or not due:
                return due, 0
            return due, await reports.purge(store, now, on_rows=progress.advance)

    with CommandProgress("purging (rows removed)", None) as progress:
        due, removed = asyncio.run(run(progress))
    for case_ref, at in due:
        click.echo(f"  {case_ref}: retention over since {iso8601(at)}")
    if dry_run:
        click.echo(f"would purge {len(due)} case(s); nothing deleted (--dry-run)")
    else:
        click.echo(f"purged {len(due)} case(s): {removed} rows deleted; the log still verifies")


COMMANDS = (status, log_group, audit_group, directory_group, config_group, purge)
