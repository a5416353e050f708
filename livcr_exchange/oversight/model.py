"""The oversight report: its JSON model, canonical bytes and detached signature (spec §16).

A report holds counts and nothing else about people: no case reference, no participant id (only
organisations' enterprise numbers), no content. The signed bytes are the canonical JSON of the
report; the signature travels in a separate small JSON document.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from typing import Final

import msgspec

from ..constants import LABEL_OVERSIGHT_REPORT, SIGNATURE_BYTES
from ..errors import BadSignature, Malformed, NonCanonical, UnknownSender
from ..keys import IdentityKey, IdentityPublicKey

REPORT_FORMAT: Final = "livcr-oversight-report/1"
SIGNATURE_FORMAT: Final = "livcr-oversight-signature/1"
SECONDARY_MARK: Final = "x"  # hidden so that a small count cannot be derived from the totals
MAX_REPORT_BYTES: Final = 16 << 20

# A published count, or a suppression mark: "<threshold" (a count from 1 to threshold - 1) or
# SECONDARY_MARK (any count, hidden to protect another).
Count = int | str


def primary_mark(threshold: int) -> str:
    return f"<{threshold}"


class Table(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Counts by row and column; totals per row and per column only with several columns."""

    id: str
    title: str
    row_label: str
    column_label: str
    rows: list[str]
    columns: list[str]
    cells: list[list[Count]]
    row_totals: list[Count]
    column_totals: list[Count]
    total: Count


class CheckpointSeen(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A signed checkpoint the auditor verified, and who else signed it (witness coverage)."""

    origin: str
    size: int
    root: str  # standard base64
    note: str  # the signed note as served
    log_signatures: int  # lines by the log's own key (verified)
    cosignatures: int  # lines by any other key
    cosigners: list[str]  # the key names of those lines, sorted, each once
    # Against the cell's root-signed witness policy, when the evidence holds one: the policy's
    # witnesses whose cosignature verifies, those whose line does not, and the quorum.
    witnessed_by: list[str] = []
    invalid_cosigners: list[str] = []
    quorum: int | None = None  # None: no witness policy in the evidence


class LogSummary(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the auditor read of one cell's log and what it verified offline."""

    cell_id: str
    origin: str
    size: int
    root: str
    leaves_read: int
    leaves_deleted_by_retention: int
    leaves_withheld: int
    directory_statements_verified: int
    directory_statements_logged: int
    first_logged_at: int | None
    last_logged_at: int | None
    consistent_from_size: int | None  # an earlier checkpoint proven a prefix of this one


class Auditor(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    organisation: str
    role: str
    key: str  # livcr-ed25519:...


class Report(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: str
    scope: str  # "cell" or "region"
    generated_at: int
    threshold: int
    retention_days: int
    auditor: Auditor
    logs: list[LogSummary]
    witness: list[CheckpointSeen]
    tables: list[Table]


class ReportSignature(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: str
    key: str
    signature: str  # standard base64 of 64 bytes


def canonical_json(report: Report) -> bytes:
    """Keys sorted, no whitespace, integers only, UTF-8 (RFC 8785 for this subset of JSON)."""
    return msgspec.json.encode(report, order="sorted")


def signed_message(report_bytes: bytes) -> bytes:
    return LABEL_OVERSIGHT_REPORT + report_bytes


def sign_report(report: Report, key: IdentityKey) -> tuple[bytes, bytes]:
    """The report's canonical bytes and its detached signature document.

    Raises:
        Malformed: the report's auditor key is not ``key``, or the report is inconsistent.
    """
    if report.auditor.key != key.public.to_text():
        raise Malformed("the report names another auditor key than the signing key")
    data = canonical_json(report)
    check_report(report)
    signature = ReportSignature(
        format=SIGNATURE_FORMAT,
        key=key.public.to_text(),
        signature=base64.b64encode(key.sign(signed_message(data))).decode("ascii"),
    )
    return data, msgspec.json.encode(signature, order="sorted")


def verify_report(
    data: bytes, signature_document: bytes, trusted: Collection[IdentityPublicKey]
) -> Report:
    """Check a signed report against the auditor keys one trusts; return the report.

    Raises:
        Malformed: the signature document or the report does not decode, or is inconsistent.
        UnknownSender: the signing key is not one of ``trusted``.
        BadSignature: the signature does not verify.
        NonCanonical: the report is not in its canonical form.
    """
    try:
        signature = msgspec.json.decode(signature_document, type=ReportSignature)
        raw = base64.b64decode(signature.signature, validate=True)
    except (msgspec.DecodeError, binascii.Error) as exc:
        raise Malformed(f"signature document: {exc}") from exc
    if signature.format != SIGNATURE_FORMAT or len(raw) != SIGNATURE_BYTES:
        raise Malformed("not a livcr-oversight-signature/1 document")
    key = IdentityPublicKey.from_text(signature.key)
    if key not in trusted:
        raise UnknownSender(f"the report is signed by {signature.key}, not a trusted auditor")
    key.verify(signed_message(data), raw)
    report = decode_report(data)
    if report.auditor.key != signature.key:
        raise BadSignature("the report names another auditor key than the one that signed it")
    return report


def decode_report(data: bytes) -> Report:
    """Decode a report strictly: its type, its one canonical spelling, its tables' shapes.

    Raises:
        Malformed: not a report of this format, or a table whose shape or marks do not fit.
        NonCanonical: a valid report not in canonical form.
    """
    if len(data) > MAX_REPORT_BYTES:
        raise Malformed(f"report is over {MAX_REPORT_BYTES} bytes")
    try:
        report = msgspec.json.decode(data, type=Report)
    except msgspec.DecodeError as exc:
        raise Malformed(f"report: {exc}") from exc
    check_report(report)
    if canonical_json(report) != data:
        raise NonCanonical("the report is not in canonical JSON form")
    return report


def check_report(report: Report) -> None:
    """Raises Malformed for a report of another format or with an inconsistent table."""
    if report.format != REPORT_FORMAT or report.scope not in {"cell", "region"}:
        raise Malformed("not a livcr-oversight-report/1 report")
    if report.threshold < 1:
        raise Malformed("the threshold must be at least 1")
    marks = {primary_mark(report.threshold), SECONDARY_MARK}
    for table in report.tables:
        _check_table(table, marks)


def _check_table(table: Table, marks: set[str]) -> None:
    rows, columns = len(table.rows), len(table.columns)
    margin = columns if columns > 1 else 0
    if (
        columns == 0
        or len(table.cells) != rows
        or any(len(row) != columns for row in table.cells)
        or len(table.row_totals) != (rows if margin else 0)
        or len(table.column_totals) != margin
    ):
        raise Malformed(f"table {table.id!r} does not have the shape its labels give")
    if len(set(table.rows)) != rows or len(set(table.columns)) != columns:
        raise Malformed(f"table {table.id!r} names a row or column twice")
    counts = [c for row in table.cells for c in row] + table.row_totals + table.column_totals
    for count in [*counts, table.total]:
        if isinstance(count, str) and count not in marks:
            raise Malformed(f"table {table.id!r} has an unknown mark {count!r}")
        if isinstance(count, int) and count < 0:
            raise Malformed(f"table {table.id!r} has a negative count")
