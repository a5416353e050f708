"""Oversight reports from a synthetic log: offline verification, counts, signature, aggregation."""

from __future__ import annotations

import base64
import datetime
import itertools
import json

import pytest
from factories import det_bytes, expect_error, kbo
from oversight_checks import assert_nothing_derivable

from livcr_exchange.audit.checkpoint import Checkpoint, sign_checkpoint, sign_note
from livcr_exchange.audit.cosignature import WitnessKey
from livcr_exchange.audit.cosignature import cosign as witness_cosign
from livcr_exchange.audit.leaves import (
    CaseMembership,
    CaseTransition,
    DirectoryChange,
    EnvelopeAccepted,
    Leaf,
    MeetingRecorded,
    Refusal,
)
from livcr_exchange.audit.merkle import LeafHashList, consistency_proof, leaf_hash, root_hash
from livcr_exchange.errors import (
    BadSignature,
    CheckpointInvalid,
    Malformed,
    NonCanonical,
    ProofInvalid,
    UnknownSender,
)
from livcr_exchange.keys import IdentityKey
from livcr_exchange.oversight import (
    Auditor,
    cell_report,
    regional_report,
    render_html,
    sign_report,
    verify_evidence,
    verify_report,
)
from livcr_exchange.oversight.evidence import (
    EVIDENCE_FORMAT,
    ConsistencyRecord,
    Evidence,
    LeafRecord,
)
from livcr_exchange.oversight.model import Report, Table, canonical_json
from livcr_exchange.oversight.tally import month_of
from livcr_exchange.oversight.witnessing import checkpoint_seen
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry, Revocation, StatementType
from livcr_exchange.witness_policy import WitnessPolicy

CELL = "cell-audit"
ORIGIN = f"livcr-exchange/{CELL}"
T0 = 1_893_456_000  # 2030-01-01
DAY = 86_400
ROOT = IdentityKey.from_seed(det_bytes("root", 32))
LOG = IdentityKey.from_seed(det_bytes("log", 32))
AUDITOR = IdentityKey.from_seed(det_bytes("auditor", 32))
ORGS = {"coord": kbo(2_000_001), "caw": kbo(2_000_002), "clb": kbo(2_000_003)}


def entry(pid: str, role: Role, key: IdentityKey) -> bytes:
    return DirectoryEntry(
        CELL,
        pid,
        ORGS.get(pid, kbo(2_000_009)),
        role,
        key.public,
        frozenset(),
        T0 - DAY,
        T0 + 400 * DAY,
    ).sign(ROOT)


SALT = bytes(range(16))  # every leaf's salt (spec §10.4); its value matters to no count


def statement_leaf(at: int, kind: StatementType, pid: str, signed: bytes) -> DirectoryChange:
    return DirectoryChange.of(at, SALT, kind, pid, signed)


def scenario() -> tuple[list[bytes], list[bytes], list[Leaf]]:
    """Two cases: one referred, met after 10 days, closed; one referred only. 3 refusals."""
    keys = {pid: IdentityKey.from_seed(det_bytes(pid, 32)) for pid in ORGS}
    entries = [
        entry(pid, Role.COORDINATOR if pid == "coord" else Role.DEELNEMER, k)
        for pid, k in keys.items()
    ]
    rotated = entry("caw", Role.DEELNEMER, IdentityKey.from_seed(det_bytes("caw-2", 32)))
    revocation = Revocation(CELL, "clb", keys["clb"].key_id, T0 + 20 * DAY, "left").sign(ROOT)
    leaves: list[Leaf] = [
        statement_leaf(T0, StatementType.DIRECTORY_ENTRY, pid, signed)
        for pid, signed in zip(ORGS, entries, strict=True)
    ]

    def message(at: int, sender: str, purpose: str, case: str, to: tuple[str, ...]) -> Leaf:
        return EnvelopeAccepted(
            at,
            SALT,
            det_bytes(f"{at}{purpose}", 16),
            sender,
            purpose,
            case,
            to,
            det_bytes(f"h{at}", 32),
            1000,
        )

    leaves += [
        message(T0 + 60, "caw", "aanmelding", "case-a", ("coord",)),
        CaseTransition(T0 + 60, SALT, "case-a", "caw", "none", "signaal_ontvangen", "none"),
        CaseMembership(T0 + 70, SALT, "case-a", "coord", ("clb",), ()),
        CaseTransition(
            T0 + 80, SALT, "case-a", "coord", "signaal_ontvangen", "in_screening", "none"
        ),
        *(
            message(T0 + 90 + i, "coord", "screening_vraag", "case-a", ("caw", "clb"))
            for i in range(7)
        ),
        MeetingRecorded(
            T0 + 10 * DAY, SALT, "case-a", "meeting-1", "coord", ("caw", "clb", "coord")
        ),
        *(
            Refusal(T0 + 11 * DAY + i, SALT, "clb", "submit", "recipient_not_allowed", bytes(16))
            for i in range(3)
        ),
        statement_leaf(T0 + 15 * DAY, StatementType.DIRECTORY_ENTRY, "caw", rotated),
        message(T0 + 31 * DAY, "coord", "afsluiting", "case-a", ("caw", "clb")),
        CaseTransition(
            T0 + 31 * DAY, SALT, "case-a", "coord", "in_screening", "afgesloten", "traject_afgerond"
        ),
        message(T0 + 32 * DAY, "caw", "wissingsbevestiging", "case-a", ("coord",)),
        statement_leaf(T0 + 20 * DAY, StatementType.REVOCATION, "clb", revocation),
        message(T0 + 33 * DAY, "clb", "aanmelding", "case-b", ("coord",)),
        CaseTransition(T0 + 33 * DAY, SALT, "case-b", "clb", "none", "signaal_ontvangen", "none"),
    ]
    return [*entries, rotated], [revocation], leaves


def evidence_of(
    leaves: list[Leaf],
    entries: list[bytes],
    revocations: list[bytes],
    *,
    earlier: int | None = None,
    cosigned: int | None = None,
    deleted: frozenset[int] = frozenset(),
) -> Evidence:
    data = [leaf.encode() for leaf in leaves]
    tree = LeafHashList(leaf_hash(d) for d in data)

    def note(size: int) -> bytes:
        return sign_checkpoint(Checkpoint(ORIGIN, size, root_hash(tree, size)), ORIGIN, LOG)

    sizes = sorted(s for s in (earlier, cosigned) if s is not None)
    notes = [cosign(note(s)) if s == cosigned else note(s) for s in sizes]
    notes.append(note(len(data)))
    proofs = [
        ConsistencyRecord(
            old=a,
            new=b,
            proof=[base64.b64encode(h).decode() for h in consistency_proof(tree, a, b)],
        )
        for a, b in itertools.pairwise([*sizes, len(data)])
    ]
    return Evidence(
        format=EVIDENCE_FORMAT,
        cell_id=CELL,
        origin=ORIGIN,
        root_key=ROOT.public.to_text(),
        log_key=LOG.public.to_text(),
        fetched_at=T0 + 40 * DAY,
        directory_entries=[base64.b64encode(e).decode() for e in entries],
        directory_revocations=[base64.b64encode(r).decode() for r in revocations],
        checkpoints=[n.decode() for n in notes],
        previous_audit_size=earlier,
        consistency=proofs,
        leaves=[
            LeafRecord(
                index=i,
                hash=base64.b64encode(leaf_hash(d)).decode(),
                data=None if i in deleted else base64.b64encode(d).decode(),
            )
            for i, d in enumerate(data)
        ],
    )


def cosign(note: bytes) -> bytes:
    """The note with a witness's line after the log's (any signed-note line counts)."""
    witness = sign_note(note[: note.rindex(b"\n\n") + 1], "witness.example/dpo", AUDITOR)
    return note + witness[witness.rindex(b"\n\n") + 2 :]


def auditor() -> Auditor:
    return Auditor(organisation=kbo(2_000_010), role="toezicht", key=AUDITOR.public.to_text())


def build(threshold: int = 5, **kw: object) -> Report:
    entries, revocations, leaves = scenario()
    log = verify_evidence(evidence_of(leaves, entries, revocations, **kw))  # type: ignore[arg-type]
    return cell_report(
        log, now=T0 + 400 * DAY, threshold=threshold, retention_days=365, auditor=auditor()
    )


def table(report: Report, table_id: str) -> Table:
    return next(t for t in report.tables if t.id == table_id)


def column(t: Table) -> dict[str, object]:
    return {name: row[0] for name, row in zip(t.rows, t.cells, strict=True)}


def test_exact_counts_follow_the_log() -> None:
    report = build(threshold=1)
    messages = table(report, "messages_by_purpose_and_month")
    assert messages.columns == ["2030-01", "2030-02"]
    assert messages.row_totals[messages.rows.index("screening_vraag")] == 7
    assert messages.total == 11
    transitions = column(table(report, "case_transitions"))
    assert transitions["none -> signaal_ontvangen"] == 2
    assert transitions["in_screening -> afgesloten"] == 1
    assert column(table(report, "referral_to_first_meeting")) == {
        "0-7 days": 0,
        "8-14 days": 1,
        "15-30 days": 0,
        "31-60 days": 0,
        "over 60 days": 0,
        "no meeting yet": 1,
    }
    refusals = table(report, "refusals_by_code")
    assert refusals.rows == ["recipient_not_allowed"]
    assert refusals.total == 3
    membership = table(report, "membership_changes")
    assert membership.rows == [ORGS["clb"]]
    assert membership.cells == [[1, 0]]
    assert column(table(report, "retention")) == {
        "within retention": 0,
        "past retention, not purged": 1,
    }
    assert column(table(report, "deletion_confirmations")) == {"received": 1, "missing": 1}
    keys = table(report, "key_events")
    assert keys.column_totals == [3, 1, 0, 1, 0]  # enrolments, a key change, a revocation
    log = report.logs[0]
    assert (log.leaves_read, log.directory_statements_logged) == (len(scenario()[2]), 5)


def test_small_counts_are_hidden_and_cannot_be_subtracted_back() -> None:
    report = build()
    refusals = table(report, "refusals_by_code")
    assert refusals.cells == [["<5"]]
    assert refusals.total == "<5"
    messages = table(report, "messages_by_purpose_and_month")
    assert messages.total == 11
    assert messages.cells[messages.rows.index("aanmelding")] == ["<5", "<5"]
    exact = build(threshold=1)
    for published, true in zip(report.tables, exact.tables, strict=True):
        grid = [[*row, rt] for row, rt in zip(true.cells, true.row_totals, strict=False)]
        rows, columns = len(true.rows), len(true.columns)
        hidden: dict[tuple[int, int], int] = {}
        if columns > 1:
            grid.append([*true.column_totals, true.total])
            for r in range(rows + 1):
                for c in range(columns + 1):
                    shown = (
                        published.cells[r][c]
                        if r < rows and c < columns
                        else published.row_totals[r]
                        if r < rows
                        else published.column_totals[c]
                        if c < columns
                        else published.total
                    )
                    if isinstance(shown, str):
                        hidden[(r, c)] = int(grid[r][c])  # type: ignore[call-overload]
        assert_nothing_derivable(published, hidden)


def test_a_signed_report_verifies_and_refuses_changes() -> None:
    data, signature = sign_report(build(), AUDITOR)
    assert data == canonical_json(verify_report(data, signature, {AUDITOR.public}))
    with expect_error(UnknownSender):
        verify_report(data, signature, {LOG.public})
    changed = data.replace(b'"total":11', b'"total":12')
    with expect_error(BadSignature):
        verify_report(changed, signature, {AUDITOR.public})
    spaced = json.dumps(json.loads(data)).encode()
    resigned = sign_report_bytes(spaced)
    with expect_error(NonCanonical):
        verify_report(spaced, resigned, {AUDITOR.public})
    with expect_error(Malformed):
        verify_report(data, b"{}", {AUDITOR.public})


def sign_report_bytes(data: bytes) -> bytes:
    from livcr_exchange.oversight.model import signed_message  # noqa: PLC0415

    return json.dumps(
        {
            "format": "livcr-oversight-signature/1",
            "key": AUDITOR.public.to_text(),
            "signature": base64.b64encode(AUDITOR.sign(signed_message(data))).decode(),
        }
    ).encode()


def test_verification_catches_a_changed_leaf_a_rollback_and_an_unlogged_statement() -> None:
    entries, revocations, leaves = scenario()
    evidence = evidence_of(leaves, entries, revocations)
    forged = leaves[5]
    evidence.leaves[5].data = base64.b64encode(
        CaseTransition(forged.logged_at + 1, SALT, "case-a", "coord", "a", "b", "none").encode()
    ).decode()
    with expect_error(ProofInvalid):
        verify_evidence(evidence)
    evidence = evidence_of(leaves, entries, revocations, earlier=10)
    evidence.checkpoints.reverse()  # the later size first: the log went back
    with expect_error(ProofInvalid):
        verify_evidence(evidence)
    extra = entry("ocmw", Role.DEELNEMER, IdentityKey.from_seed(det_bytes("ocmw", 32)))
    with expect_error(ProofInvalid):
        verify_evidence(evidence_of(leaves, [*entries, extra], revocations))
    other_log = evidence_of(leaves, entries, revocations)
    other_log.log_key = ROOT.public.to_text()
    with expect_error(CheckpointInvalid):
        verify_evidence(other_log)


def test_consistency_with_an_earlier_audit_and_deleted_leaves() -> None:
    report = build(earlier=10, cosigned=14, deleted=frozenset({6}))
    log = report.logs[0]
    assert log.consistent_from_size == 10
    assert log.leaves_deleted_by_retention == 1
    assert [seen.size for seen in report.witness] == [10, 14, len(scenario()[2])]
    assert [seen.cosignatures for seen in report.witness] == [0, 1, 0]


def test_cosignature_lines_are_counted_by_key_name() -> None:
    note = cosign(sign_checkpoint(Checkpoint(ORIGIN, 3, bytes(32)), ORIGIN, LOG))
    _, seen = checkpoint_seen(note, ORIGIN, LOG.public.raw)
    assert (seen.log_signatures, seen.cosignatures, seen.cosigners) == (
        1,
        1,
        ["witness.example/dpo"],
    )


WITNESSES = {
    name: IdentityKey.from_seed(det_bytes(name, 32))
    for name in ("witness.example/a", "witness.example/b")
}


def policy_of(quorum: int, signer: IdentityKey = ROOT) -> str:
    keys = tuple(WitnessKey(name, key.public.raw) for name, key in WITNESSES.items())
    signed = WitnessPolicy(CELL, 1, quorum, keys).sign(signer)
    return base64.b64encode(signed).decode()


def test_cosignatures_of_the_policy_witnesses_are_verified_against_their_keys() -> None:
    """With the cell's witness policy in the evidence, a policy witness's line counts only when
    it verifies under its key: a line in its name by another key is named as not verifying,
    and the quorum is judged on the lines that verify."""
    entries, revocations, leaves = scenario()
    evidence = evidence_of(leaves, entries, revocations)
    note = evidence.checkpoints[-1].encode()
    body = note[: note.rindex(b"\n\n") + 1]
    genuine = cosign_line(body, "witness.example/a", WITNESSES["witness.example/a"])
    forged = cosign_line(body, "witness.example/b", AUDITOR)  # b's name, another key
    evidence.checkpoints[-1] = (note + genuine + forged).decode()

    evidence.witness_policy = policy_of(quorum=1)
    (seen,) = verify_evidence(evidence).checkpoints
    assert (seen.cosignatures, seen.witnessed_by, seen.quorum) == (2, ["witness.example/a"], 1)
    assert seen.invalid_cosigners == []  # b's key id does not match: not b's line at all
    forged_id = cosign_line(body, "witness.example/b", WITNESSES["witness.example/b"])
    tampered = forged_id[:-10] + (b"A" if forged_id[-10:-9] != b"A" else b"B") + forged_id[-9:]
    evidence.checkpoints[-1] = (note + genuine + tampered).decode()
    (seen,) = verify_evidence(evidence).checkpoints
    assert (seen.witnessed_by, seen.invalid_cosigners) == (
        ["witness.example/a"],
        ["witness.example/b"],
    )

    evidence.witness_policy = policy_of(quorum=2)
    (seen,) = verify_evidence(evidence).checkpoints
    assert (len(seen.witnessed_by), seen.quorum) == (1, 2)  # the quorum is not met
    evidence.witness_policy = policy_of(quorum=1, signer=AUDITOR)
    with expect_error(BadSignature):
        verify_evidence(evidence)


def cosign_line(body: bytes, name: str, key: IdentityKey) -> bytes:
    return witness_cosign(body, name, key, T0 + 39 * DAY)


def test_regional_sum_keeps_hidden_parts_hidden() -> None:
    one, other = build(), build()
    region = regional_report([one, other], now=T0, threshold=5, auditor=auditor())
    messages = table(region, "messages_by_purpose_and_month")
    assert messages.total == 22
    refusals = table(region, "refusals_by_code")
    assert refusals.cells == [["x"]]  # 3 + 3 is 6, but each part was hidden
    assert [log.cell_id for log in region.logs] == [CELL, CELL]
    data, signature = sign_report(region, AUDITOR)
    assert verify_report(data, signature, {AUDITOR.public}).scope == "region"


def test_html_is_self_contained_and_names_nobody() -> None:
    page = render_html(build())
    for forbidden in ("case-a", "case-b", "coord", "caw", "clb", "<script", "src=", "href="):
        assert forbidden not in page, forbidden
    assert "<svg" in page
    assert "&lt;5" in page


@pytest.mark.parametrize("when", [0, 951_782_400, 1_893_456_000 - 1, 4_102_444_800])
def test_month_of_is_the_utc_calendar_month(when: int) -> None:
    expected = datetime.datetime.fromtimestamp(when, tz=datetime.UTC).strftime("%Y-%m")
    assert month_of(when) == expected
