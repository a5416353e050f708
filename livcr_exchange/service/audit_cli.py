"""`livcr audit`: fetch a cell's log as its supervisor or DPO, verify it offline, report on it.

Service glue: network, files, clock. Everything it checks or counts is done by the pure
``livcr_exchange.oversight`` modules.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from pathlib import Path

import aiohttp
import click
import msgspec

from ..audit.checkpoint import default_origin
from ..errors import LivcrError
from ..keyfile import SecretBundle, unlock
from ..keys import IdentityPublicKey
from ..oversight import (
    Auditor,
    Report,
    cell_report,
    decode_evidence,
    regional_report,
    render_html,
    sign_report,
    verify_evidence,
    verify_report,
)
from ..oversight.evidence import EVIDENCE_FORMAT, ConsistencyRecord, Evidence, LeafRecord
from ..oversight.model import decode_report
from ..request_auth import HubBinding
from .cli_env import key_passphrase
from .hub_client import HubClient, HubRefused

LEAF_PAGE = 1000  # the hub serves at most this many leaves per request
DEFAULT_THRESHOLD = 5
DEFAULT_RETENTION_DAYS = 365  # the hub's default retention_days


def _unlock(path: Path) -> SecretBundle:
    try:
        return unlock(path.read_bytes(), key_passphrase())
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from exc
    except LivcrError as exc:
        raise click.ClickException(f"{path}: {exc.code}: {exc}") from exc


def _earlier_notes(path: Path | None) -> list[str]:
    """The checkpoints an earlier report or evidence file recorded, oldest first."""
    if path is None:
        return []
    data = path.read_bytes()
    try:
        return [seen.note for seen in decode_report(data).witness]
    except LivcrError:
        return decode_evidence(data).checkpoints


COSIGNED_PATH = "/v1/log/cosigned"  # a quorum-cosigned checkpoint, where the hub serves one


async def fetch_evidence(
    client: HubClient,
    *,
    cell_id: str,
    origin: str,
    root_key: str,
    log_key: str,
    earlier: list[str],
    now: int,
) -> Evidence:
    """Everything needed to check the log offline: directory, checkpoints, proofs, leaves.

    The checkpoints are the last one an earlier audit saw (if any), the newest cosigned one (if
    the hub serves one) and the current one, last; each with the consistency proof to the next.

    Raises:
        HubRefused: the hub refused a request.
    """
    directory = await client.directory()
    note = (await client.checkpoint()).decode("utf-8")
    size = _size_of(note)
    cosigned = await _cosigned(client)
    before = sorted([*earlier[-1:], *cosigned], key=_size_of)
    notes = [*before, note]
    consistency = []
    for old, new in itertools.pairwise(notes):
        old_size, new_size = _size_of(old), _size_of(new)
        if 0 < old_size <= new_size <= size:
            proof = await client.consistency(old_size, new_size) if old_size < new_size else []
            encoded = [base64.b64encode(h).decode() for h in proof]
            consistency.append(ConsistencyRecord(old=old_size, new=new_size, proof=encoded))
    leaves: list[LeafRecord] = []
    while len(leaves) < size:
        end = min(size, len(leaves) + LEAF_PAGE)
        page = await client.leaves(len(leaves), end)
        leaves += [
            LeafRecord(index=item.index, hash=item.hash, data=item.data, withheld=item.withheld)
            for item in page.leaves
        ]
    return Evidence(
        format=EVIDENCE_FORMAT,
        cell_id=cell_id,
        origin=origin,
        root_key=root_key,
        log_key=log_key,
        fetched_at=now,
        directory_entries=[base64.b64encode(e).decode() for e in directory.entries],
        directory_revocations=[base64.b64encode(r).decode() for r in directory.revocations],
        checkpoints=notes,
        previous_audit_size=_size_of(earlier[-1]) if earlier else None,
        witness_policy=directory.witness_policy,
        consistency=consistency,
        leaves=leaves,
    )


def _size_of(note: str) -> int:
    """The tree size line of a checkpoint note (verified later, offline); -1 if unreadable."""
    lines = note.split("\n")
    return int(lines[1]) if len(lines) > 2 and lines[1].isdigit() else -1


async def _cosigned(client: HubClient) -> list[str]:
    """The hub's newest cosigned checkpoint, or nothing if it serves none (yet)."""
    try:
        note = await client.text(COSIGNED_PATH)
    except HubRefused as exc:
        if exc.status == 404:
            return []
        raise
    return [note.decode("utf-8")]


@click.group("audit")
def audit_group() -> None:
    """Oversight reports for the supervisor (toezicht) or the DPO: counts, never content."""


@audit_group.command("fetch")
@click.option("--hub", "hub_url", required=True, help="The hub's base URL.")
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The auditor's secret-key file (passphrase from $LIVCR_PASSPHRASE).",
)
@click.option("--cell", "cell_id", required=True)
@click.option("--root-key", required=True, help="The cell's root key (livcr-ed25519:...).")
@click.option("--log-key", required=True, help="The hub's checkpoint key (livcr-ed25519:...).")
@click.option("--origin", default=None, help="The log's origin [livcr-exchange/CELL].")
@click.option(
    "--previous",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="An earlier report or evidence file: prove the log still extends it.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def fetch(
    hub_url: str,
    key_file: Path,
    cell_id: str,
    root_key: str,
    log_key: str,
    origin: str | None,
    previous: Path | None,
    out: Path,
) -> None:
    """Fetch the whole log with proofs into OUT, then verify it offline."""
    bundle = _unlock(key_file)
    now = int(time.time())

    async def run() -> Evidence:
        async with aiohttp.ClientSession() as session:
            log_origin = origin or default_origin(cell_id)
            hub = HubBinding(cell_id, log_origin)  # requests are signed for this hub (§11.1)
            client = HubClient(hub_url, bundle.participant_id, bundle.identity, session, hub=hub)
            return await fetch_evidence(
                client,
                cell_id=cell_id,
                origin=log_origin,
                root_key=root_key,
                log_key=log_key,
                earlier=_earlier_notes(previous),
                now=now,
            )

    try:
        evidence = asyncio.run(run())
        verified = verify_evidence(evidence)
    except HubRefused as exc:
        raise click.ClickException(f"the hub refused: {exc}") from exc
    except (LivcrError, aiohttp.ClientError) as exc:
        raise click.ClickException(f"verification failed: {exc}") from exc
    out.write_bytes(msgspec.json.encode(evidence))
    last = verified.checkpoints[-1]
    click.echo(
        f"fetched and verified {last.size} leaves ({verified.deleted} deleted by retention,"
        f" {verified.withheld} withheld), {len(verified.checkpoints)} checkpoint(s),"
        f" {verified.statements_logged} directory statements; wrote {out}"
    )


@audit_group.command("report")
@click.argument("evidence_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_file", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--threshold",
    type=click.IntRange(1, 100),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Counts from 1 to THRESHOLD-1 are shown as <THRESHOLD.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(1, 36500),
    default=DEFAULT_RETENTION_DAYS,
    show_default=True,
)
@click.option("--now", type=int, default=None, help="Judge retention at this Unix time.")
def report(
    evidence_file: Path,
    key_file: Path,
    out_dir: Path,
    threshold: int,
    retention_days: int,
    now: int | None,
) -> None:
    """Verify EVIDENCE_FILE offline; write report.json, report.json.sig and report.html."""
    bundle = _unlock(key_file)
    now = int(time.time()) if now is None else now
    try:
        verified = verify_evidence(decode_evidence(evidence_file.read_bytes()))
        entry = verified.directory.current_entry(bundle.participant_id, now)
    except LivcrError as exc:
        raise click.ClickException(f"verification failed: {exc.code}: {exc}") from exc
    auditor = Auditor(
        organisation=entry.organisation,
        role=entry.role.value,
        key=bundle.identity.public.to_text(),
    )
    built = cell_report(
        verified, now=now, threshold=threshold, retention_days=retention_days, auditor=auditor
    )
    _write(built, bundle, out_dir)


@audit_group.command("verify")
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    help="A trusted auditor key (livcr-ed25519:...); repeatable.",
)
@click.option(
    "--signature",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The detached signature [REPORT_FILE.sig].",
)
def verify(report_file: Path, keys: tuple[str, ...], signature: Path | None) -> None:
    """Check a report's signature and form."""
    checked = _verified(report_file, signature, keys)
    cells = ", ".join(log.cell_id for log in checked.logs)
    click.echo(f"report verified: {checked.scope} {cells}, signed by {checked.auditor.key}")


@audit_group.command("aggregate")
@click.argument(
    "reports", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--trust",
    "keys",
    multiple=True,
    required=True,
    help="A cell auditor's key (livcr-ed25519:...); repeatable.",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The regional auditor's secret-key file.",
)
@click.option("--organisation", required=True, help="The regional auditor's enterprise number.")
@click.option("--role", default="toezicht", show_default=True)
@click.option(
    "--threshold", type=click.IntRange(1, 100), default=DEFAULT_THRESHOLD, show_default=True
)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
def aggregate(
    reports: tuple[Path, ...],
    keys: tuple[str, ...],
    key_file: Path,
    organisation: str,
    role: str,
    threshold: int,
    out_dir: Path,
) -> None:
    """Verify each cell's signed report and sum them into one regional report."""
    checked = [_verified(path, None, keys) for path in reports]
    bundle = _unlock(key_file)
    auditor = Auditor(organisation=organisation, role=role, key=bundle.identity.public.to_text())
    built = regional_report(checked, now=int(time.time()), threshold=threshold, auditor=auditor)
    _write(built, bundle, out_dir)


def _verified(path: Path, signature: Path | None, keys: tuple[str, ...]) -> Report:
    signature_path = signature or path.with_name(path.name + ".sig")
    try:
        trusted = {IdentityPublicKey.from_text(k) for k in keys}
        return verify_report(path.read_bytes(), signature_path.read_bytes(), trusted)
    except OSError as exc:
        raise click.ClickException(f"{exc.filename}: {exc.strerror}") from exc
    except LivcrError as exc:
        raise click.ClickException(f"{path}: {exc.code}: {exc}") from exc


def _write(built: Report, bundle: SecretBundle, out_dir: Path) -> None:
    data, signature = sign_report(built, bundle.identity)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, bytes] = {
        "report.json": data,
        "report.json.sig": signature,
        "report.html": render_html(built).encode("utf-8"),
    }
    for name, content in paths.items():
        temporary = out_dir / f".{name}.tmp"
        temporary.write_bytes(content)
        temporary.replace(out_dir / name)
    click.echo(f"wrote {', '.join(str(out_dir / n) for n in paths)}")


COMMANDS = (audit_group,)
