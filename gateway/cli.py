"""`livcr gateway ...`: create a gateway, run it with its local API, and use a running one.

``init``, ``serve`` and ``migrate`` work on the gateway's folder; ``send``, ``inbox``,
``export``, ``status``, ``outbox`` and ``case`` are clients of a running gateway's local API
(specs/gateway-api.yaml), reached at the address and with the token its configuration names.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import click

from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityPublicKey, Suite
from livcr_exchange.service.cli_env import key_passphrase
from livcr_exchange.service.files import open_private
from livcr_exchange.service.lazy_commands import LazyGroup
from livcr_exchange.service.purposes_cli import PURPOSE_CHOICE
from livcr_exchange.wire import check_ident

from .cli_client import call_api, config_option, load, read_json_file, when
from .cli_documents import upload_files
from .config import ConfigError

# The gateway itself (hub client, store, crypto, server) is imported by `init` and `serve`
# only, and these groups' modules when asked for: the commands that call a running gateway's
# local API start without it.
LAZY_COMMANDS = {
    "migrate": "gateway.cli_ops",
    "outbox": "gateway.cli_ops",
    "case": "gateway.cli_ops",
    "attachment": "gateway.cli_documents",
    "config": "gateway.cli_files",
    "directory": "gateway.cli_files",
    "witness-key": "gateway.witness_cli",
}


@click.group("gateway", cls=LazyGroup, lazy=LAZY_COMMANDS)
def gateway_group() -> None:
    """Run a participant gateway and use its local API."""


@gateway_group.command("init")
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
@click.option("--participant-id", required=True, help="This service's id in the cell, e.g. `caw`.")
@click.option("--cell-id", required=True, help="The cell's id, e.g. `gent`.")
@click.option("--root-key", required=True, help="The cell's root key (livcr-ed25519:...).")
@click.option("--hub-url", required=True, help="The hub's base URL, e.g. https://hub.example.")
@click.option("--hub-log-key", required=True, help="The hub's log key (livcr-ed25519:...).")
@click.option("--suite", type=click.Choice(["xwing", "x25519"]), default="xwing", show_default=True)
@click.option("--api-port", type=click.IntRange(1, 65535), default=8800, show_default=True)
@click.option(
    "--hub-origin",
    default="",
    help="The hub's log origin, from the operator (default livcr-exchange/<cell id>).",
)
def init(
    directory: Path,
    participant_id: str,
    cell_id: str,
    root_key: str,
    hub_url: str,
    hub_log_key: str,
    suite: str,
    api_port: int,
    hub_origin: str,
) -> None:
    """Create a gateway in DIRECTORY (default: here): keys, config, API token, public bundle.

    The identity key is encrypted under a passphrase ($LIVCR_PASSPHRASE or a prompt). Hand the
    public bundle (ID.public.json) to the hub operator for `livcr hub enrol`.
    """
    from .setup import init_gateway  # noqa: PLC0415  (see LAZY_COMMANDS)

    check_init_options(participant_id, cell_id, root_key, hub_url, hub_log_key)
    passphrase = key_passphrase(confirm=True)
    if not passphrase:
        raise click.ClickException("the key file passphrase may not be empty")
    try:
        bundle = init_gateway(
            directory,
            participant_id=participant_id,
            cell_id=cell_id,
            root_key=root_key,
            hub_url=hub_url,
            hub_log_key=hub_log_key,
            passphrase=passphrase,
            now=int(time.time()),
            suite=Suite.XWING if suite == "xwing" else Suite.X25519,
            api_port=api_port,
            hub_origin=hub_origin,
        )
    except FileExistsError as exc:
        raise click.ClickException(
            f"{exc.args[0]} exists: {directory} already holds a gateway"
        ) from exc
    except (ConfigError, LivcrError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot create the gateway in {directory} (nothing was left behind): {exc}"
        ) from exc
    config = load(directory / "gateway.toml")
    click.echo(f"config:        {directory / 'gateway.toml'}")
    click.echo(f"public bundle: {bundle}  (hand it to the hub operator: livcr hub enrol)")
    click.echo(f"API token:     {config.path(config.api.token_file)}  (mode 0600)")


def check_init_options(
    participant_id: str, cell_id: str, root_key: str, hub_url: str, hub_log_key: str
) -> None:
    """Raises click.BadParameter naming the first option that is not well formed."""
    for option, check in (
        ("--participant-id", lambda: check_ident(participant_id, "participant id")),
        ("--cell-id", lambda: check_ident(cell_id, "cell id")),
        ("--root-key", lambda: IdentityPublicKey.from_text(root_key)),
        ("--hub-log-key", lambda: IdentityPublicKey.from_text(hub_log_key)),
    ):
        try:
            check()
        except LivcrError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from exc
    if not hub_url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--hub-url")


@gateway_group.command("serve")
@config_option
def serve(config_path: Path) -> None:
    """Run the gateway and its local API until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    from .serving import serve_until_stopped  # noqa: PLC0415  (see LAZY_COMMANDS)

    serve_until_stopped(load(config_path))


@gateway_group.command("send")
@config_option
@click.option("--case", "case_ref", required=True, help="The case reference.")
@click.option(
    "--purpose",
    type=PURPOSE_CHOICE,
    required=True,
    help="The purpose (`livcr purposes list`); the body may leave out its tag.",
)
@click.option("--to", "recipients", required=True, help="Recipient ids, comma-separated.")
@click.option(
    "--body",
    "body_file",
    type=click.File("rb"),
    required=True,
    help="The purpose body as a JSON file (- for standard input).",
)
@click.option("--meeting", "meeting_ref", default=None, help="The meeting the message is about.")
@click.option(
    "--cosignatures",
    "cosignatures_file",
    type=click.File("rb"),
    default=None,
    help="A JSON list of co-signatures (as POST /v1/cosignatures returns them).",
)
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A document to send with the message (repeatable).",
)
@click.option("--attach-type", "attach_types", multiple=True, help="Its media type, in order.")
@click.option("--no-wait", is_flag=True, help="Return once queued, before the hub's receipt.")
def send(
    config_path: Path,
    case_ref: str,
    purpose: str,
    recipients: str,
    body_file: BinaryIO,
    meeting_ref: str | None,
    cosignatures_file: BinaryIO | None,
    attach: tuple[Path, ...],
    attach_types: tuple[str, ...],
    no_wait: bool,  # noqa: FBT001  (click flag)
) -> None:
    """Send a message through the running gateway; print the hub's receipt."""
    config = load(config_path)
    request: dict[str, Any] = {
        "case_ref": case_ref,
        "purpose": purpose,
        "to": [r.strip() for r in recipients.split(",") if r.strip()],
        "body": read_json_file(body_file, "--body"),
        "wait": not no_wait,
    }
    if meeting_ref is not None:
        request["meeting_ref"] = meeting_ref
    if cosignatures_file is not None:
        request["cosignatures"] = read_json_file(cosignatures_file, "--cosignatures")
    if attach:
        request["attachments"] = upload_files(config, list(attach), list(attach_types))
    status, answer = call_api(config, "POST", "/v1/messages", body=request)
    click.echo(sent_line(status, answer))


def sent_line(status: int, answer: dict[str, Any]) -> str:
    """What ``send`` prints of the API's answer."""
    if status == 201 and answer["leaf_index"] is None:
        return (
            f"sent {answer['message_id']}: the hub holds it from an earlier attempt but showed"
            " no receipt; its place in the log is not proven"
        )
    if status == 201:
        return (
            f"sent {answer['message_id']}: logged at {when(answer['logged_at'])}"
            f" as leaf {answer['leaf_index']} of a tree of {answer['tree_size']}"
        )
    return f"queued {answer['message_id']}: the gateway delivers it when the hub answers"


@gateway_group.command("inbox")
@config_option
@click.option(
    "--after", type=click.IntRange(0), default=0, show_default=True, help="Only after this seq."
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option(
    "--wait", type=click.FloatRange(0, 30), default=0.0, help="Seconds to wait for a message."
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer, bodies too.")
def inbox(
    config_path: Path,
    after: int,
    limit: int,
    wait: float,
    as_json: bool,  # noqa: FBT001  (click flag)
) -> None:
    """List received messages (without consuming them: pass --after to page on)."""
    config = load(config_path)
    params = {"after": str(after), "limit": str(limit), "wait": f"{wait:g}"}
    _, page = call_api(config, "GET", "/v1/messages", params=params)
    if as_json:
        click.echo(json.dumps(page, indent=2, ensure_ascii=False))
        return
    if not page["messages"]:
        click.echo(f"no messages after {after}")
        return
    for m in page["messages"]:
        erased = "  (erased)" if m["body"] is None else ""
        click.echo(
            f"{m['seq']:>6}  {when(m['logged_at'])}  {m['purpose']:<24} {m['case_ref']:<24}"
            f" from {m['sender_id']}{erased}"
        )
    click.echo(f"next: --after {page['next_after']}")


@gateway_group.command("export")
@config_option
@click.argument("case_ref")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON here (default: standard output).",
)
def export(config_path: Path, case_ref: str, out: Path | None) -> None:
    """Subject-access export of one case: records, bodies and the log evidence, as JSON."""
    try:
        check_ident(case_ref, "case reference")
    except LivcrError as exc:
        raise click.BadParameter(str(exc), param_hint="CASE_REF") from exc
    config = load(config_path)
    _, document = call_api(config, "GET", f"/v1/cases/{case_ref}/export")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    with open_private(out) as handle:  # personal data: 0600
        handle.write(text)
    click.echo(f"wrote {len(document['records'])} records of {case_ref} to {out}", err=True)


@gateway_group.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--wait-ready",
    type=click.FloatRange(0, 3600),
    default=None,
    help="First wait up to SECONDS for the gateway to be ready (exit 1 if it is not).",
)
def status(config_path: Path, as_json: bool, wait_ready: float | None) -> None:  # noqa: FBT001
    """The running gateway's state: hub connection, outbox, quarantine, dossier."""
    from .cli_ops import wait_until_ready  # noqa: PLC0415  (see LAZY_COMMANDS)

    config = load(config_path)
    if wait_ready is not None:
        wait_until_ready(config, wait_ready)
    _, report = call_api(config, "GET", "/v1/status")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    state = f"HALTED: {report['halted']}" if report["halted"] else "running"
    hub = "connected to the hub" if report["connected"] else "not connected to the hub"
    click.echo(f"gateway {report['participant']}: {state}, {hub}")
    click.echo(
        f"outbox: {report['outbox_pending']} pending, {report['outbox_failed']} failed;"
        f" quarantined: {report['quarantined']};"
        f" dossier: {report['dossier_records']} records, {report['unread']} unread"
    )
    if report["degraded"]:
        click.echo(f"DEGRADED: restarted after a crash: {', '.join(report['degraded'])}")
    if report["halted"]:
        sys.exit(2)


COMMANDS = (gateway_group,)
