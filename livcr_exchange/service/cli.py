"""The core's subcommands of ``livcr``: ``keys``, ``inspect``, ``vectors`` and ``purposes``.

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

from ..conformance import EnvelopeVector, Outcome, run_vector, unb64std
from ..constants import DEFAULT_PREKEY_LIFETIME
from ..errors import LivcrError
from ..keyfile import SecretBundle, lock
from ..keys import IdentityKey, PrekeySecret, Suite
from ..statements import PrekeyStatement
from ..wire import check_ident
from .cli_env import key_passphrase
from .files import write_private
from .inspect_cli import inspect
from .purposes_cli import purposes_group
from .vectors import load_all_vectors, load_vector_dir

SUITES = {"xwing": Suite.XWING, "x25519": Suite.X25519}


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
    write_private(
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
    passphrase = key_passphrase(confirm=True)
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


@vectors_group.command("extract")
@click.argument("name")
@click.option(
    "--from",
    "vector_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("specs/vectors"),
    show_default=True,
    help="The folder of vector files.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the vector's envelope bytes here.",
)
@click.option(
    "--directory",
    "directory_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the vector's cell directory here (for `livcr inspect --directory`).",
)
def vectors_extract(name: str, vector_dir: Path, out: Path, directory_out: Path | None) -> None:
    """Write the envelope of the vector NAME to a file, to inspect or change it."""
    found = {v.name: v for v in load_vector_dir(vector_dir)}
    vector = found.get(name)
    if vector is None:
        raise click.ClickException(f"no vector named {name!r} in {vector_dir}")
    if not isinstance(vector, EnvelopeVector):
        raise click.ClickException(
            f"{name} is a {type(vector).__struct_config__.tag} vector: only envelope vectors"
            " carry an envelope"
        )
    out.write_bytes(unb64std(vector.envelope))
    click.echo(f"{name}: {out} ({out.stat().st_size} bytes), expected outcome {vector.expect}")
    if directory_out is not None:
        directory_out.write_bytes(msgspec.json.format(msgspec.json.encode(vector.cell)) + b"\n")
        click.echo(f"its cell directory: {directory_out}")
        click.echo(f"judge it as the vector does: --now {vector.now} --at {vector.judged_at}")


COMMANDS = (keys_group, inspect, vectors_group, purposes_group)
