"""`livcr gateway outbox|case|migrate` and the readiness wait: an operator's and a
coordinator's commands on a gateway."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import BinaryIO

import click

from livcr_exchange.errors import LivcrError
from livcr_exchange.wire import check_ident

from .cli_client import api_address, call_api, config_option, load, read_json_file
from .config import GatewayConfig
from .migrations import SCHEMA_VERSION, StoreTooNew
from .store import GatewayStore, StoreLocked

READY_POLL_SECONDS = 0.2


def wait_until_ready(config: GatewayConfig, seconds: float) -> None:
    """Poll /readyz until it answers 200. Raises click.ClickException (exit 1) at the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        if _ready(config):
            return
        if time.monotonic() >= deadline:
            raise click.ClickException(f"the gateway was not ready within {seconds:g} s")
        time.sleep(READY_POLL_SECONDS)


def _ready(config: GatewayConfig) -> bool:
    import aiohttp  # noqa: PLC0415  (only this wait needs a session of its own)

    async def run() -> bool:
        base, connector, _ = api_address(config)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            try:
                async with session.get(base + "/readyz") as response:
                    return response.status == 200
            except (aiohttp.ClientError, OSError, TimeoutError):
                return False

    return asyncio.run(run())


def _case(case_ref: str) -> str:
    try:
        return check_ident(case_ref, "case reference")
    except LivcrError as exc:
        raise click.BadParameter(str(exc), param_hint="CASE_REF") from exc


def _ids(text: str) -> list[str]:
    return [i.strip() for i in text.split(",") if i.strip()]


def _echo(answer: object) -> None:
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))


@click.command("migrate")
@config_option
def migrate(config_path: Path) -> None:
    """Bring the gateway's store to this version's schema (it also happens on start)."""
    config = load(config_path)
    store = GatewayStore(config.path(config.gateway.database))

    async def run() -> int | None:
        await store.open()
        await store.close()
        return store.migrated_from

    try:
        before = asyncio.run(run())
    except (StoreLocked, StoreTooNew) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"store at schema {SCHEMA_VERSION} (was {before})")


@click.group("outbox")
def outbox_group() -> None:
    """What the outbox holds: list it; retry or discard a message refused for good."""


@outbox_group.command("list")
@config_option
@click.option(
    "--state", default="pending,failed", show_default=True, help="States, comma-separated."
)
def outbox_list(config_path: Path, state: str) -> None:
    """Messages in the outbox with their state, attempts and the hub's code."""
    _, page = call_api(load(config_path), "GET", "/v1/outbox", params={"state": state})
    for m in page["messages"]:
        code = f"  {m['code']}: {m['detail'] or ''}" if m["code"] else ""
        click.echo(f"{m['message_id']}  {m['state']:<9} {m['purpose']:<24} {m['case_ref']}{code}")
    if not page["messages"]:
        click.echo("the outbox holds nothing in that state")


@outbox_group.command("retry")
@config_option
@click.argument("message_id")
def outbox_retry(config_path: Path, message_id: str) -> None:
    """Send a failed message again (sealed anew if it must be)."""
    call_api(load(config_path), "POST", f"/v1/outbox/{message_id}/retry")
    click.echo(f"{message_id}: pending again")


@outbox_group.command("discard")
@config_option
@click.argument("message_id")
def outbox_discard(config_path: Path, message_id: str) -> None:
    """Give a failed message up: its content goes, the record stays."""
    call_api(load(config_path), "POST", f"/v1/outbox/{message_id}/discard")
    click.echo(f"{message_id}: discarded")


@click.group("case")
def case_group() -> None:
    """The coordinator's case commands (and reading a case as the hub reports it)."""


@case_group.command("open")
@config_option
@click.option("--members", required=True, help="Member ids, comma-separated.")
@click.option("--case", "case_ref", default=None, help="A reference (default: a new random one).")
def case_open(config_path: Path, members: str, case_ref: str | None) -> None:
    """Open a case; print its reference."""
    request = {"members": _ids(members)} | ({} if case_ref is None else {"case_ref": case_ref})
    _, answer = call_api(load(config_path), "POST", "/v1/cases", body=request)
    click.echo(answer["case_ref"])


@case_group.command("show")
@config_option
@click.argument("case_ref")
def case_show(config_path: Path, case_ref: str) -> None:
    """The case's state and members as the hub reports them."""
    _echo(call_api(load(config_path), "GET", f"/v1/cases/{_case(case_ref)}")[1])


@case_group.command("members")
@config_option
@click.argument("case_ref")
@click.option("--add", default="", help="Ids to add, comma-separated.")
@click.option("--remove", default="", help="Ids to remove, comma-separated.")
@click.option("--owner", default=None, help="The new owner (casusverantwoordelijke).")
def case_members(
    config_path: Path, case_ref: str, add: str, remove: str, owner: str | None
) -> None:
    """Change a case's members or owner."""
    request: dict[str, object] = {"add": _ids(add), "remove": _ids(remove)}
    if owner is not None:
        request["owner"] = owner
    path = f"/v1/cases/{_case(case_ref)}/members"
    _echo(call_api(load(config_path), "POST", path, body=request)[1])


@case_group.command("meeting")
@config_option
@click.argument("case_ref")
@click.option("--meeting", "meeting_ref", required=True, help="The meeting's reference.")
@click.option("--present", required=True, help="Ids present, comma-separated.")
def case_meeting(config_path: Path, case_ref: str, meeting_ref: str, present: str) -> None:
    """Record a meeting and who was present."""
    request = {"meeting_ref": meeting_ref, "present": _ids(present)}
    path = f"/v1/cases/{_case(case_ref)}/meetings"
    _echo(call_api(load(config_path), "POST", path, body=request)[1])


@case_group.command("move")
@config_option
@click.argument("case_ref")
@click.option("--to", "to", required=True, help="The new state.")
@click.option("--reason", default=None, help="Why (a code, e.g. `afgerond`).")
def case_move(config_path: Path, case_ref: str, to: str, reason: str | None) -> None:
    """Move a case to another state."""
    request = {"to": to} | ({} if reason is None else {"reason": reason})
    path = f"/v1/cases/{_case(case_ref)}/transition"
    _echo(call_api(load(config_path), "POST", path, body=request)[1])


@case_group.command("cosign")
@config_option
@click.argument("case_ref")
@click.option("--meeting", "meeting_ref", required=True, help="The meeting of the fiche.")
@click.option("--body", "body_file", type=click.File("rb"), required=True, help="The fiche (JSON).")
@click.option(
    "--to", "recipients", required=True, help="The recipients agreed to, comma-separated."
)
@click.option(
    "--deadline", type=int, required=True, help="The last log time agreed to (Unix seconds)."
)
def case_cosign(
    config_path: Path,
    case_ref: str,
    meeting_ref: str,
    body_file: BinaryIO,
    recipients: str,
    deadline: int,
) -> None:
    """Co-sign a terugkoppelingsfiche for those recipients and that deadline (spec §7.4); print
    the co-signature (for `send --cosignatures`)."""
    request = {
        "case_ref": _case(case_ref),
        "meeting_ref": meeting_ref,
        "body": read_json_file(body_file, "--body"),
        "to": [r.strip() for r in recipients.split(",") if r.strip()],
        "deadline": deadline,
    }
    _echo(call_api(load(config_path), "POST", "/v1/cosignatures", body=request)[1])


@case_group.command("erase")
@config_option
@click.argument("case_ref")
def case_erase(config_path: Path, case_ref: str) -> None:
    """Erase this service's content about a case (metadata stays as evidence)."""
    _, answer = call_api(load(config_path), "POST", f"/v1/cases/{_case(case_ref)}/erase")
    click.echo(f"erased {answer['erased']} records of {case_ref}")


COMMANDS = (migrate, outbox_group, case_group)
