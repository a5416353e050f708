"""``livcr inspect``: what the hub sees of an envelope, and which receiver checks pass.

For a security tester: the envelope comes from a file, standard input or base64 text; the
answer lists every receiver check of spec §6.6 and says which ran, with what outcome, and which
could not run for want of an input (a directory, the recipient's prekey secret).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import click
import msgspec

from ..conformance import CellInputs
from ..envelope import Freshness, UnverifiedEnvelope
from ..errors import LivcrError
from ..times import iso8601

# Base64 text, as a person pastes it: the alphabets of RFC 4648 §4 and §5, white space, padding.
BASE64_TEXT = re.compile(rb"\A[A-Za-z0-9+/=_\-\s]+\Z")


@dataclass(frozen=True)
class Check:
    """One receiver check: ``ran`` says whether it could run, ``outcome`` what it found."""

    name: str
    ran: bool
    outcome: str


def ran(name: str, outcome: str) -> Check:
    return Check(name, ran=True, outcome=outcome)


def not_run(name: str, why: str) -> Check:
    return Check(name, ran=False, outcome=why)


def read_envelope(source: BinaryIO, *, from_base64: bool) -> bytes:
    """The envelope's bytes from a file or standard input, decoding base64 text when asked.

    Raises:
        click.ClickException: base64 that does not decode, or base64 text given as bytes.
    """
    data = source.read()
    if from_base64:
        text = re.sub(rb"\s+", b"", data)
        try:
            if b"-" in text or b"_" in text:
                return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
            return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise click.ClickException(f"the input is not base64: {exc}") from exc
    # An envelope's random bytes are never all base64 characters: this is text, not bytes.
    if data and BASE64_TEXT.match(data):
        raise click.ClickException(
            "the input is base64 text, not an envelope's bytes: add --base64"
        )
    return data


def load_directory(path: Path) -> Any:
    """A cell directory file as `hub directory export` writes it, verified.

    Raises:
        click.ClickException: the file is not such a directory, or does not verify (one line).
    """
    try:
        return msgspec.json.decode(path.read_bytes(), type=CellInputs).directory()
    except msgspec.DecodeError as exc:
        raise click.ClickException(
            f"{path}: not a cell directory (cell_id, root_key, entries, revocations): {exc}"
        ) from exc
    except (LivcrError, binascii.Error, ValueError) as exc:
        raise click.ClickException(f"{path}: the directory does not verify: {exc}") from exc


def header_fields(envelope: UnverifiedEnvelope) -> dict[str, Any]:
    """What the hub sees: the header, in the order of spec §6.2."""
    core = envelope.header.core
    return {
        "suite": f"{core.suite.value} ({core.suite.name})",
        "message_id": core.message_id.hex(),
        "timestamp": iso8601(core.timestamp),
        "expires_at": iso8601(core.expires_at),
        "cell": core.cell_id,
        "sender": core.sender_id,
        "sender_key_id": core.sender_key_id.hex(),
        "purpose": core.purpose,
        "case_ref": core.case_ref,
        "meeting_ref": core.meeting_ref,
        "recipients": list(core.recipient_ids()),
        "cosigners": [s.signer_id for s in core.cosign.signatures] if core.cosign else [],
        "size": envelope.size,
        "sealed_body_length": envelope.sealed_body_length,
    }


def run_checks(
    data: bytes, directory_file: Path | None, now: int, judged_at: int
) -> tuple[dict[str, Any] | None, list[Check]]:
    """The header (None when it does not parse) and every receiver check with its outcome."""
    checks: list[Check] = []
    try:
        envelope = UnverifiedEnvelope.parse(data)
    except LivcrError as exc:
        checks.append(ran("frame and header (§6.6 steps 1-4)", f"{exc.code}: {exc}"))
        return None, checks
    checks.append(ran("frame and header (§6.6 steps 1-4)", "ok"))
    if directory_file is None:
        checks.append(not_run("sender key, signature, time (§6.6 steps 5-8)", "needs --directory"))
    else:
        directory = load_directory(directory_file)
        try:
            envelope.verify(directory, now=now, judged_at=judged_at, freshness=Freshness.DELIVERY)
            outcome = "ok: the directory vouches for the sender's key; the signature verifies"
        except LivcrError as exc:
            outcome = f"{exc.code}: {exc}"
        checks.append(ran("sender key, signature, time (§6.6 steps 5-8)", outcome))
    checks += [
        not_run("replay (§6.6 step 9)", "needs the receiver's record of accepted messages"),
        not_run(
            "stanza, unwrap, commitment, body (§6.6 steps 10-14)",
            "cannot decrypt without the recipient's prekey secret",
        ),
        not_run("purpose rules and body schema (§7.3)", "needs the opened body and the case"),
    ]
    return header_fields(envelope), checks


@click.command("inspect")
@click.argument("envelope_file", type=click.File("rb"), default="-", required=False)
@click.option("--base64", "from_base64", is_flag=True, help="The input is base64 text.")
@click.option(
    "--directory",
    "directory_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Cell directory JSON (`livcr hub directory export`): check the sender and signature.",
)
@click.option(
    "--at",
    "judged_at",
    type=int,
    default=None,
    help="Judge key validity at this Unix time (the hub's log time; default: now).",
)
@click.option("--now", type=int, default=None, help="Check expiry against this Unix time.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(
    envelope_file: BinaryIO,
    from_base64: bool,  # noqa: FBT001  (click flag)
    directory_file: Path | None,
    judged_at: int | None,
    now: int | None,
    as_json: bool,  # noqa: FBT001  (click flag)
) -> None:
    """Show what the hub can see of an envelope (ENVELOPE_FILE, or - for standard input) and
    which receiver checks pass; exit 1 when one fails."""
    data = read_envelope(envelope_file, from_base64=from_base64)
    now = int(time.time()) if now is None else now
    header, checks = run_checks(data, directory_file, now, judged_at or now)
    failed = any(c.ran and not c.outcome.startswith("ok") for c in checks)
    if as_json:
        report = {
            "header": header,
            "checks": [{"check": c.name, "ran": c.ran, "outcome": c.outcome} for c in checks],
            "passed": not failed,
        }
        click.echo(json.dumps(report, indent=2))
    else:
        for label, value in (header or {}).items():
            shown = ", ".join(value) if isinstance(value, list) else value
            click.echo(f"{label:>18}: {shown if shown not in (None, '') else '-'}")
        click.echo("checks:")
        for c in checks:
            click.echo(f"  {'ran' if c.ran else 'not run':<8} {c.name}: {c.outcome}")
    if failed:
        sys.exit(1)
