"""A small LIVC-R cell exchanging sealed messages without a network: the protocol on its own.

Run with `make demo-offline` (or `python examples/offline_cell.py`). It prints a short transcript,
the last step minutes that carry a PDF, and exits non-zero if any step does not behave as the
protocol says.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import msgspec

from livcr_exchange.attachments import AttachmentRef, attachment_digest
from livcr_exchange.cases import CaseState
from livcr_exchange.directory import Directory
from livcr_exchange.document_examples import pdf
from livcr_exchange.documents import open_documents, seal_message_stream
from livcr_exchange.envelope import MessageSpec, UnverifiedEnvelope, open_envelope, seal
from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite
from livcr_exchange.policy import (
    CaseView,
    MessageFacts,
    Participant,
    evaluate_header,
    evaluate_message,
)
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE, encode_body
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry

CELL = "voorbeeldstad"
CASE = "case-d5uqyaemmfk2gxqn5zlg5ktd5m"
KBO = "0207437468"
YEAR = 365 * 86_400


@dataclass
class Member:
    participant_id: str
    role: Role
    identity: IdentityKey
    prekey: PrekeySecret

    @property
    def view(self) -> Participant:
        return Participant(self.participant_id, self.role, frozenset(CATALOGUE))


def enrol(root: IdentityKey, member: Member, now: int) -> bytes:
    entry = DirectoryEntry(
        CELL,
        member.participant_id,
        KBO,
        member.role,
        member.identity.public,
        frozenset(CATALOGUE),
        now - YEAR,
        now + YEAR,
    )
    return entry.sign(root)


def say(step: str, text: str) -> None:
    print(f"  {step:<28} {text}")


def check(condition: bool, what: str) -> None:  # noqa: FBT001
    if not condition:
        fail(what)


def fail(what: str) -> None:
    print(f"FAILED: {what}")
    sys.exit(1)


def main() -> int:
    now = int(time.time())
    root = IdentityKey.from_seed(os.urandom(32))
    members = {
        pid: Member(
            pid,
            role,
            IdentityKey.from_seed(os.urandom(32)),
            PrekeySecret(Suite.XWING, os.urandom(Suite.XWING.secret_seed_bytes)),
        )
        for pid, role in (
            ("coord", Role.COORDINATOR),
            ("io-politie", Role.IO_POLITIE),
            ("caw", Role.DEELNEMER),
            ("clb", Role.DEELNEMER),
        )
    }
    directory = Directory.from_signed(
        CELL, root.public, [enrol(root, m, now) for m in members.values()]
    )
    print(f"Cell {CELL!r}: root key {root.public.to_text()[:30]}...")
    for m in members.values():
        say(
            m.participant_id, f"{m.role.value}, prekey {m.prekey.public.to_text()[:26]}... (X-Wing)"
        )

    print("\n1. The CAW refers a young person to the coordinator (aanmelding)")
    caw, coord, clb = members["caw"], members["coord"], members["clb"]
    body = encode_body(example_body("aanmelding"))
    marker = b"Voorbeeld"
    check(marker in body, "example body carries its marker")
    spec = MessageSpec(CELL, "caw", "aanmelding", CASE, {"coord": coord.prekey.public})
    facts = MessageFacts("caw", "aanmelding", CASE, ("coord",))
    decision = evaluate_message(facts, caw.view, {"coord": coord.view}, None, body)
    check(decision.allowed, "the referral is allowed")
    envelope = seal(caw.identity, spec, body, now=now, ttl=7 * 86_400, random=os.urandom)
    seen = UnverifiedEnvelope.parse(envelope)
    say(
        "sealed",
        f"{len(envelope)} bytes; the hub sees purpose={seen.purpose}, "
        f"case={seen.case_ref}, to={','.join(seen.recipient_ids)}",
    )
    check(marker not in envelope, "no plaintext in the envelope")
    say("plaintext in envelope?", "no (searched for the family name)")
    opened = open_envelope(
        envelope,
        recipient_id="coord",
        prekeys={coord.prekey.key_id: coord.prekey},
        directory=directory,
        now=now + 60,
        judged_at=now,
    )
    check(opened.body == body, "the coordinator reads the referral")
    say(
        "coordinator opens",
        f"{len(opened.body)} bytes, sender verified as {opened.sender.participant_id}",
    )

    print("\n2. The CAW tries to send a screening question (only the coordinator may)")
    case = CaseView(CASE, CaseState.IN_SCREENING, frozenset(members))
    denied = evaluate_header(
        MessageFacts("caw", "screening_vraag", CASE, ("clb",)), caw.view, {"clb": clb.view}, case
    )
    check(not denied.allowed and denied.code == "purpose_not_allowed", "the purpose is refused")
    say("refused", f"{denied.code}: {denied.reason}")

    print("\n3. Someone flips one byte of the sealed referral in transit")
    tampered = bytearray(envelope)
    tampered[len(envelope) // 2] ^= 0x01
    try:
        open_envelope(
            bytes(tampered),
            recipient_id="coord",
            prekeys={coord.prekey.key_id: coord.prekey},
            directory=directory,
            now=now + 60,
            judged_at=now,
        )
    except LivcrError as exc:
        say("rejected", f"{exc.code} (to a peer: {exc.wire_reason!r})")
    else:
        fail("a tampered envelope must be rejected")

    print("\n4. The CLB, not a recipient, tries to open the referral")
    try:
        open_envelope(
            envelope,
            recipient_id="clb",
            prekeys={clb.prekey.key_id: clb.prekey},
            directory=directory,
            now=now + 60,
            judged_at=now,
        )
    except LivcrError as exc:
        say("rejected", f"{exc.code}: {exc}")
    else:
        fail("a non-recipient must not open the envelope")

    minutes_with_document(members, directory, now)
    print("\nAll steps behaved as specified.")
    return 0


def minutes_with_document(members: dict[str, Member], directory: Directory, now: int) -> None:
    print("\n5. The coordinator sends the minutes with their PDF to the CAW (verslag_besluit)")
    coord, caw, clb = members["coord"], members["caw"], members["clb"]
    text = b"Verslag van het casusoverleg: traject met het CAW afgesproken."
    document = pdf(text.decode("latin-1"))
    ref = AttachmentRef(
        name="verslag-overleg.pdf",
        media_type="application/pdf",
        size=len(document),
        digest=attachment_digest(document).hex(),
    )
    minutes = msgspec.structs.replace(example_body("verslag_besluit"), attachments=(ref,))
    spec = MessageSpec(CELL, "coord", "verslag_besluit", CASE, {"caw": caw.prekey.public})
    envelope = b"".join(
        seal_message_stream(
            coord.identity,
            spec,
            encode_body(minutes),
            [(ref, [document])],
            now=now,
            ttl=7 * 86_400,
            random=os.urandom,
        )
    )
    check(document not in envelope and text not in envelope, "no plaintext in the envelope")
    say("sealed", f"{len(envelope)} bytes: the body, then the PDF, as one sealed stream")
    say("PDF in envelope?", f"no (searched for its {len(document)} bytes and its text)")
    opened = open_documents(
        lambda: [envelope],
        recipient_id="caw",
        prekeys={caw.prekey.key_id: caw.prekey},
        directory=directory,
        now=now + 60,
        judged_at=now,
    )
    [(got, data)] = opened.read_all()  # each document checked by size, digest and content
    check(data == document and attachment_digest(data).hex() == got.digest, "the PDF, whole")
    say("CAW opens the PDF", f"{got.name}: {len(data)} bytes, {got.media_type}, digest matched")
    try:
        open_documents(
            lambda: [envelope],
            recipient_id="clb",
            prekeys={clb.prekey.key_id: clb.prekey},
            directory=directory,
            now=now + 60,
            judged_at=now,
        )
    except LivcrError as exc:
        say("CLB, not a recipient", f"rejected {exc.code}: it cannot open the PDF")
    else:
        fail("a non-recipient must not open the minutes' PDF")


if __name__ == "__main__":
    sys.exit(main())
