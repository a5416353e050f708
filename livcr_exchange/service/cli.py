"""The core's subcommands of ``livcr``: ``keys``, ``inspect`` and ``vectors``.

This is service glue: it reads files, the clock and the system's randomness, then calls the
pure core with them.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import click
import msgspec

from ..conformance import CellInputs, Outcome, run_vector
from ..constants import DEFAULT_PREKEY_LIFETIME
from ..envelope import Freshness, UnverifiedEnvelope
from ..errors import LivcrError
from ..keyfile import SecretBundle, lock
from ..keys import IdentityKey, PrekeySecret, Suite
from ..statements import PrekeyStatement
from ..wire import check_ident
from .vectors import load_all_vectors

PASSPHRASE_ENV = "LIVCR_PASSPHRASE"  # noqa: S105  (the variable's name, not a secret)
SUITES = {"xwing": Suite.XWING, "x25519": Suite.X25519}


def read_passphrase(*, confirm: bool) -> bytes:
    """From $LIVCR_PASSPHRASE, else a hidden prompt."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env.encode("utf-8")
    value: str = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value.encode("utf-8")


def write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start, refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def make_key_files(
    participant_id: str,
    out_dir: Path,
    suite: Suite,
    prekey_count: int,
    lifetime: int,
    passphrase: bytes,
) -> tuple[Path, Path]:
    """Draw an identity and prekeys; write ``ID.secret`` (0600) and ``ID.public.json``."""
    now = int(time.time())
    identity = IdentityKey.from_seed(os.urandom(32))
    prekeys = tuple(
        PrekeySecret(suite, os.urandom(suite.secret_seed_bytes)) for _ in range(prekey_count)
    )
    statements = [
        PrekeyStatement(
            participant_id, identity.key_id, p.public, now + i * lifetime, now + (i + 1) * lifetime
        ).sign(identity)
        for i, p in enumerate(prekeys)
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    secret_path = out_dir / f"{participant_id}.secret"
    public_path = out_dir / f"{participant_id}.public.json"
    write_secret(
        secret_path, lock(SecretBundle(participant_id, identity, prekeys), passphrase, os.urandom)
    )
    public = {
        "participant_id": participant_id,
        "identity_key": identity.public.to_text(),
        "prekeys": [base64.b64encode(s).decode("ascii") for s in statements],
    }
    public_path.write_text(json.dumps(public, indent=2) + "\n")
    return secret_path, public_path


@click.group("keys")
def keys_group() -> None:
    """Identity and prekey files."""


@keys_group.command("new")
@click.argument("participant_id")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path(),
    show_default=True,
    help="Folder for ID.secret and ID.public.json.",
)
@click.option("--suite", type=click.Choice(sorted(SUITES)), default="xwing", show_default=True)
@click.option(
    "--prekeys",
    "prekey_count",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Consecutive prekeys to create.",
)
@click.option(
    "--lifetime-days",
    type=click.IntRange(1, 35),
    default=DEFAULT_PREKEY_LIFETIME // 86400,
    show_default=True,
)
def keys_new(
    participant_id: str, out_dir: Path, suite: str, prekey_count: int, lifetime_days: int
) -> None:
    """Create an identity key and prekeys for PARTICIPANT_ID.

    The secret file is encrypted under a passphrase read from $LIVCR_PASSPHRASE or a prompt.
    """
    try:
        check_ident(participant_id, "participant id")
    except LivcrError as exc:
        raise click.BadParameter(str(exc), param_hint="PARTICIPANT_ID") from exc
    passphrase = read_passphrase(confirm=True)
    try:
        secret, public = make_key_files(
            participant_id, out_dir, SUITES[suite], prekey_count, lifetime_days * 86400, passphrase
        )
    except FileExistsError as exc:
        raise click.ClickException(
            f"{exc.filename} exists; refusing to overwrite a secret key"
        ) from exc
    click.echo(f"secret key file: {secret} (mode 0600)")
    click.echo(f"public bundle:   {public} (hand this to the hub operator)")


@click.command("inspect")
@click.argument("envelope_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--directory",
    "directory_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Cell directory JSON (cell_id, root_key, entries, revocations): verify the signature.",
)
@click.option(
    "--at",
    "judged_at",
    type=int,
    default=None,
    help="Judge key validity at this Unix time (the hub's log time; default: now).",
)
@click.option("--now", type=int, default=None, help="Check expiry against this Unix time.")
def inspect(
    envelope_file: Path, directory_file: Path | None, judged_at: int | None, now: int | None
) -> None:
    """Print what the hub can see of an envelope; with --directory, verify its signature."""
    try:
        envelope = UnverifiedEnvelope.parse(envelope_file.read_bytes())
    except LivcrError as exc:
        raise click.ClickException(f"rejected: {exc.code}: {exc}") from exc
    core = envelope.header.core
    rows = [
        ("suite", f"{core.suite.value} ({core.suite.name})"),
        ("message id", core.message_id.hex()),
        ("timestamp", str(core.timestamp)),
        ("expires at", str(core.expires_at)),
        ("cell", core.cell_id),
        ("sender", f"{core.sender_id} (key {core.sender_key_id.hex()})"),
        ("purpose", core.purpose),
        ("case reference", core.case_ref),
        ("meeting", core.meeting_ref or "-"),
        ("recipients", ", ".join(core.recipient_ids())),
        (
            "co-signers",
            ", ".join(s.signer_id for s in core.cosign.signatures) if core.cosign else "-",
        ),
        ("size", f"{envelope.size} bytes (sealed body {envelope.sealed_body_length})"),
    ]
    for label, value in rows:
        click.echo(f"{label:>15}: {value}")
    if directory_file is None:
        click.echo("      signature: not checked (no --directory given)")
        return
    cell = msgspec.json.decode(directory_file.read_bytes(), type=CellInputs)
    now = int(time.time()) if now is None else now
    try:
        envelope.verify(
            cell.directory(), now=now, judged_at=judged_at or now, freshness=Freshness.DELIVERY
        )
    except LivcrError as exc:
        raise click.ClickException(f"signature check failed: {exc.code}: {exc}") from exc
    click.echo("      signature: valid, sender key vouched for by the directory")


@click.group("vectors")
def vectors_group() -> None:
    """The published test vectors."""


@vectors_group.command("verify")
@click.argument(
    "vector_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("specs/vectors"),
)
@click.option("-v", "--verbose", is_flag=True, help="List every vector, not only failures.")
def vectors_verify(vector_dir: Path, verbose: bool) -> None:  # noqa: FBT001  (click flag)
    """Run every vector in VECTOR_DIR and its external/ suites; print `N passed, N failed`."""
    outcomes: list[Outcome] = [run_vector(v) for v in load_all_vectors(vector_dir)]
    failed = [o for o in outcomes if not o.passed]
    for outcome in outcomes if verbose else failed:
        mark = "ok  " if outcome.passed else "FAIL"
        click.echo(f"{mark} {outcome.name}: expected {outcome.expected}, got {outcome.actual}")
        if outcome.detail:
            click.echo(f"     {outcome.detail}")
    click.echo(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if failed or not outcomes:
        raise SystemExit(1)


COMMANDS = (keys_group, inspect, vectors_group)
