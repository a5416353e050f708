"""Attachments through the core: sealed as one stream with the body, opened body first, each
document checked by size, digest and content as it streams (spec §6.7)."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec
import pytest
from factories import NOW, TTL, Cell, det_bytes, expect_error

from livcr_exchange.attachments import (
    AttachmentRef,
    MediaType,
    attachment_digest,
    attachment_hasher,
    check_name,
    check_refs,
)
from livcr_exchange.document_examples import jpeg, odf, pdf, png
from livcr_exchange.documents import OpenedDocuments, open_documents, seal_message_stream
from livcr_exchange.envelope import seal_stream
from livcr_exchange.errors import (
    AttachmentDigestMismatch,
    AttachmentNameInvalid,
    AttachmentNotAllowed,
    AttachmentSizeMismatch,
    AttachmentTypeMismatch,
    AttachmentTypeNotAllowed,
    BodySchemaViolation,
    LivcrError,
)
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE, encode_body
from livcr_exchange.sniff import sniffer_for

MINUTES = "verslag_besluit"
ODT, ODS = MediaType.ODT, MediaType.ODS


@pytest.fixture(scope="module")
def cell() -> Cell:
    return Cell.build()


def ref(name: str, media_type: str, data: bytes) -> AttachmentRef:
    return AttachmentRef(
        name=name, media_type=media_type, size=len(data), digest=attachment_digest(data).hex()
    )


def body_with(purpose: str, refs: Iterable[AttachmentRef]) -> bytes:
    return encode_body(msgspec.structs.replace(example_body(purpose), attachments=tuple(refs)))


def pieces(data: bytes, size: int = 4099) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def seal_documents(
    cell: Cell, purpose: str, files: list[tuple[str, str, bytes]], recipient: str = "caw"
) -> bytes:
    refs = [ref(name, media_type, data) for name, media_type, data in files]
    body = body_with(purpose, refs)
    outgoing = [(r, pieces(data)) for r, (_, _, data) in zip(refs, files, strict=True)]
    spec = cell.spec([recipient], purpose=purpose)
    stream = seal_message_stream(
        cell.identity("coord"), spec, body, outgoing, now=NOW, ttl=TTL, random=cell.random
    )
    return b"".join(stream)


def seal_unchecked(
    cell: Cell, purpose: str, body: bytes, attachments: list[bytes], recipient: str = "caw"
) -> bytes:
    """What a sender that skips its own checks seals: the receiver must refuse it alone."""
    spec = cell.spec([recipient], purpose=purpose)
    parts = [(len(data), [data]) for data in attachments]
    stream = seal_stream(
        cell.identity("coord"), spec, body, parts, now=NOW, ttl=TTL, random=cell.random
    )
    return b"".join(stream)


def open_as(cell: Cell, envelope: bytes, recipient: str = "caw") -> OpenedDocuments:
    return open_documents(
        lambda: pieces(envelope, 10_007),
        recipient_id=recipient,
        prekeys=cell[recipient].secrets_by_id(),
        directory=cell.directory,
        now=NOW + 60,
        judged_at=NOW + 30,
    )


def refusal(cell: Cell, envelope: bytes) -> str:
    try:
        open_as(cell, envelope).read_all()
    except LivcrError as error:
        return error.code
    return "ok"


FILES = [
    ("verslag.pdf", "application/pdf", pdf("Verslag van het overleg")),
    ("genogram.png", "image/png", png(3, 5)),
    ("brief.jpeg", "image/jpeg", jpeg()),
    ("actieplan.odt", ODT, odf(ODT)),
    ("planning.ods", ODS, odf(ODS)),
]


# Round trips.
def test_pdf_png_jpeg_and_odf_attachments_round_trip(cell: Cell) -> None:
    envelope = seal_documents(cell, MINUTES, FILES)
    opened = open_as(cell, envelope)
    assert opened.body == example_body(MINUTES).__class__(
        **{
            **msgspec.structs.asdict(example_body(MINUTES)),
            "attachments": tuple(ref(n, t, d) for n, t, d in FILES),
        }
    )
    received = opened.read_all()
    assert [(r.name, r.media_type, data) for r, data in received] == FILES


def test_a_body_only_message_of_a_purpose_with_documents(cell: Cell) -> None:
    envelope = seal_documents(cell, MINUTES, [])
    opened = open_as(cell, envelope)
    assert opened.refs == ()
    assert opened.read_all() == []
    assert cell.open_as("caw", envelope).body == body_with(MINUTES, [])


def test_attachments_left_unread_are_still_checked(cell: Cell) -> None:
    data = pdf()
    body = body_with(
        MINUTES, [ref("a.pdf", "application/pdf", data), ref("b.png", "image/png", png())]
    )
    other = bytes(len(png()))  # b.png is not the PNG named
    envelope = seal_unchecked(cell, MINUTES, body, [data, other])
    opened = open_as(cell, envelope)
    with expect_error(AttachmentDigestMismatch):
        for _ in opened.attachments():
            pass  # nothing read: the opener reads and checks each one itself


def test_every_purpose_with_documents_round_trips_a_pdf(cell: Cell) -> None:
    with_documents = [tag for tag, p in CATALOGUE.items() if p.attachments is not None]
    assert set(with_documents) == {
        "aanmelding",
        "casusinfo_overleg",
        "verslag_besluit",
        "actieplan",
        "opvolgingsrapport",
    }
    for purpose in with_documents:
        envelope = seal_documents(cell, purpose, [("bijlage.pdf", "application/pdf", pdf())])
        [(got, data)] = open_as(cell, envelope).read_all()
        assert (got.name, data) == ("bijlage.pdf", pdf())


# Refusals, at the receiver (the sender's checks skipped).
def test_content_that_is_not_its_declared_type_is_refused(cell: Cell) -> None:
    for declared, data in [
        ("application/pdf", png()),
        ("image/png", pdf()),
        ("image/jpeg", b"MZ\x90\x00 an executable"),
        (ODT, odf(ODS)),
        (ODS, b"PK\x03\x04" + bytes(60)),
    ]:
        name = {"application/pdf": "x.pdf", "image/png": "x.png", "image/jpeg": "x.jpg"}.get(
            declared, "x.odt" if declared == ODT else "x.ods"
        )
        body = body_with(MINUTES, [ref(name, declared, data)])
        assert refusal(cell, seal_unchecked(cell, MINUTES, body, [data])) == (
            "attachment_type_mismatch"
        ), declared


def test_a_purpose_without_documents_that_carries_one_is_refused(cell: Cell) -> None:
    data = pdf()
    raw = msgspec.json.decode(encode_body(example_body("screening_vraag")))
    raw["attachments"] = [msgspec.to_builtins(ref("a.pdf", "application/pdf", data))]
    named = seal_unchecked(cell, "screening_vraag", msgspec.json.encode(raw), [data])
    assert refusal(cell, named) == "attachment_not_allowed"
    unnamed = seal_unchecked(
        cell, "screening_vraag", encode_body(example_body("screening_vraag")), [data]
    )
    assert refusal(cell, unnamed) == "attachment_not_allowed"


def test_a_file_over_its_cap_is_refused_before_any_byte_is_read(cell: Cell) -> None:
    rule = CATALOGUE["aanmelding"].attachments
    assert rule is not None
    big = AttachmentRef(
        name="scan.pdf",
        media_type="application/pdf",
        size=rule.max_file_bytes + 1,
        digest="00" * 32,
    )
    envelope = seal_unchecked(cell, "aanmelding", body_with("aanmelding", [big]), [b"%PDF-1.4"])
    assert refusal(cell, envelope) == "attachment_too_large"


def test_a_real_file_over_the_total_cap_is_refused(cell: Cell) -> None:
    rule = CATALOGUE["aanmelding"].attachments
    assert rule is not None
    each = rule.max_total_bytes // 4
    files = [det_bytes(f"part {i}", each) for i in range(5)]  # five files, under the count cap
    refs = [ref(f"scan{i}.pdf", "application/pdf", data) for i, data in enumerate(files)]
    envelope = seal_unchecked(cell, "aanmelding", body_with("aanmelding", refs), files)
    assert refusal(cell, envelope) == "attachment_too_large"


def test_bad_names_are_refused(cell: Cell) -> None:
    data = pdf()
    for name in [
        "../verslag.pdf",
        "map/verslag.pdf",
        "verslag.png",
        "a\u202egdp.pdf",
        "regel\neen.pdf",
        "Cafe\u0301.pdf",
        ".pdf",
        ".verborgen.pdf",
        "x" * 200 + ".pdf",
    ]:
        body = body_with(MINUTES, [ref(name, "application/pdf", data)])
        assert refusal(cell, seal_unchecked(cell, MINUTES, body, [data])) == (
            "attachment_name_invalid"
        ), name


def test_a_digest_mismatch_is_refused(cell: Cell) -> None:
    named, sent = pdf("eerste"), pdf("tweede")
    assert len(named) == len(sent)
    body = body_with(MINUTES, [ref("v.pdf", "application/pdf", named)])
    assert refusal(cell, seal_unchecked(cell, MINUTES, body, [sent])) == (
        "attachment_digest_mismatch"
    )


def test_sizes_that_do_not_fill_the_plaintext_are_refused(cell: Cell) -> None:
    data = pdf()
    body = body_with(MINUTES, [ref("v.pdf", "application/pdf", data)])
    for sent in ([data + b"\n"], [data[:-1]], [data, data]):
        assert refusal(cell, seal_unchecked(cell, MINUTES, body, sent)) == (
            "attachment_size_mismatch"
        )


def test_a_type_the_purpose_does_not_allow_is_refused(cell: Cell) -> None:
    data = b"MZ\x90\x00"
    for media_type in [
        "application/x-msdownload",
        "application/vnd.ms-word.document.macroEnabled.12",
    ]:
        body = body_with(MINUTES, [ref("x.pdf", media_type, data)])
        assert refusal(cell, seal_unchecked(cell, MINUTES, body, [data])) == (
            "attachment_type_not_allowed"
        )
    body = body_with("casusinfo_overleg", [ref("foto.png", "image/png", png())])
    assert refusal(cell, seal_unchecked(cell, "casusinfo_overleg", body, [png()])) == (
        "attachment_type_not_allowed"
    )


def test_more_files_than_the_purpose_allows_are_refused(cell: Cell) -> None:
    rule = CATALOGUE["aanmelding"].attachments
    assert rule is not None
    files = [pdf(str(i)) for i in range(rule.max_count + 1)]
    refs = [ref(f"s{i}.pdf", "application/pdf", data) for i, data in enumerate(files)]
    envelope = seal_unchecked(cell, "aanmelding", body_with("aanmelding", refs), files)
    assert refusal(cell, envelope) == "attachment_not_allowed"


@pytest.mark.parametrize(
    ("media_type", "name", "data"),
    [
        ("application/pdf", "s.pdf", pdf(extra=b"/OpenAction << /S /JavaScript /JS (x) >> ")),
        ("application/pdf", "s.pdf", pdf(extra=b"/OpenAction << /S /Launch /F (cmd.exe) >> ")),
        ("application/pdf", "s.pdf", pdf(extra=b"/Names << /EmbeddedFiles 9 0 R >> ")),
        ("application/pdf", "s.pdf", pdf(extra=b"/AA << /O << /J#53 (x) >> >> ")),
        (ODT, "s.odt", odf(ODT, extra_entries={"Basic/Standard/Module1.xml": b"<x/>"})),
        (ODS, "s.ods", odf(ODS, extra_entries={"Scripts/python/m.py": b"print()"})),
    ],
    ids=["pdf_js", "pdf_launch", "pdf_embedded", "pdf_escaped_js", "odt_basic", "ods_scripts"],
)
def test_active_content_is_refused(cell: Cell, media_type: str, name: str, data: bytes) -> None:
    body = body_with(MINUTES, [ref(name, media_type, data)])
    assert refusal(cell, seal_unchecked(cell, MINUTES, body, [data])) == (
        "attachment_active_content"
    )


# The sender's own checks.
def test_the_sender_refuses_what_the_receiver_would(cell: Cell) -> None:
    with expect_error(AttachmentTypeMismatch):
        seal_documents(cell, MINUTES, [("v.pdf", "application/pdf", png())])
    raw = msgspec.json.decode(encode_body(example_body("afsluiting")))
    listed = ref("v.pdf", "application/pdf", pdf())
    raw["attachments"] = [msgspec.to_builtins(listed)]
    with expect_error(AttachmentNotAllowed):
        seal_message_stream(
            cell.identity("coord"),
            cell.spec(["caw"], purpose="afsluiting"),
            msgspec.json.encode(raw),
            [(listed, [pdf()])],
            now=NOW,
            ttl=TTL,
            random=cell.random,
        )
    with expect_error(AttachmentNameInvalid):
        seal_documents(cell, MINUTES, [("v.odt", "application/pdf", pdf())])
    data = pdf()
    spec = cell.spec(["caw"], purpose=MINUTES)
    body = body_with(MINUTES, [ref("v.pdf", "application/pdf", data)])
    changed = [(ref("v.pdf", "application/pdf", data), [pdf("ander")])]
    with expect_error(AttachmentDigestMismatch):
        b"".join(
            seal_message_stream(
                cell.identity("coord"), spec, body, changed, now=NOW, ttl=TTL, random=cell.random
            )
        )
    with expect_error(AttachmentSizeMismatch):
        seal_message_stream(
            cell.identity("coord"), spec, body, [], now=NOW, ttl=TTL, random=cell.random
        )


def test_name_rule_accepts_ordinary_names() -> None:
    for name in ["Verslag overleg 12 maart.pdf", "Brief école.PDF", "scan (1).JPEG", "a.jpg"]:
        check_name(name, MediaType.PDF if name.lower().endswith(".pdf") else MediaType.JPEG)


def test_refs_are_checked_in_order_without_a_rule() -> None:
    check_refs("afsluiting", None, ())
    with expect_error(AttachmentNotAllowed):
        check_refs("afsluiting", None, (ref("a.pdf", "application/pdf", b""),))
    rule = CATALOGUE[MINUTES].attachments
    with expect_error(AttachmentNameInvalid):
        check_refs(
            MINUTES,
            rule,
            (ref("a.pdf", "application/pdf", b""), ref("A.PDF", "application/pdf", b"")),
        )
    with expect_error(AttachmentTypeNotAllowed):
        check_refs(MINUTES, rule, (ref("a.exe", "application/x-msdownload", b""),))


def test_a_body_with_a_malformed_reference_breaks_its_schema(cell: Cell) -> None:
    raw = msgspec.json.decode(body_with(MINUTES, []))
    raw["attachments"] = [
        {"name": "a.pdf", "media_type": "application/pdf", "size": 1, "digest": "zz"}
    ]
    envelope = seal_unchecked(cell, MINUTES, msgspec.json.encode(raw), [b"x"])
    with expect_error(BodySchemaViolation):
        open_as(cell, envelope)


def test_sniffers_judge_the_same_at_any_piece_size() -> None:
    active = pdf(extra=b"/OpenAction << /S /JavaScript /JS (x) >> ")
    for media_type, data, code in [
        (MediaType.PDF, pdf(), None),
        (MediaType.PDF, active, "attachment_active_content"),
        (MediaType.PNG, png(), None),
        (MediaType.ODT, odf(ODT), None),
        (MediaType.ODT, odf(ODT, extra_entries={"basic/x": b""}), "attachment_active_content"),
    ]:
        for size in (1, 2, 3, 5, 64, 1000, len(data)):
            sniffer = sniffer_for(media_type)
            try:
                for piece in pieces(data, size):
                    sniffer.feed(piece)
                sniffer.finish()
                outcome = None
            except LivcrError as error:
                outcome = error.code
            assert outcome == code, (media_type, size)


def test_pdf_stream_data_may_hold_the_short_name_by_chance() -> None:
    """Compressed stream data is random bytes: ``/JS`` there is no key, and is not refused."""
    noise = b"\x00/JS\x01" * 3
    data = pdf().replace(b"stream\nBT", b"stream\n" + noise + b"BT")
    sniffer = sniffer_for(MediaType.PDF)
    sniffer.feed(data)
    sniffer.finish()


def test_opening_a_large_attachment_takes_constant_memory(cell: Cell) -> None:
    size = 12 * 1024 * 1024
    head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"

    def document() -> Iterator[bytes]:
        yield head
        for index in range((size - len(head) - len(tail)) // 65536):
            yield bytes([index % 251]) * 65536
        yield b"\x20" * ((size - len(head) - len(tail)) % 65536)
        yield tail

    digest = attachment_hasher()
    for piece in document():
        digest.update(piece)
    big = AttachmentRef(
        name="groot.pdf", media_type="application/pdf", size=size, digest=digest.digest().hex()
    )
    spec = cell.spec(["caw"], purpose=MINUTES)
    body = body_with(MINUTES, [big])
    tracemalloc.start()
    try:
        # Kept whole only so the opener can read it twice; the opening is what is measured.
        stored = list(
            seal_message_stream(
                cell.identity("coord"),
                spec,
                body,
                [(big, document())],
                now=NOW,
                ttl=TTL,
                random=cell.random,
            )
        )
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        opened = open_documents(
            lambda: iter(stored),
            recipient_id="caw",
            prekeys=cell["caw"].secrets_by_id(),
            directory=cell.directory,
            now=NOW + 60,
            judged_at=NOW + 30,
        )
        received = hashlib.sha256()
        for _, data in opened.attachments():
            for piece in data:
                received.update(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256(b"".join(document())).digest()
    assert received.digest() == expected
    assert peak - base < 2 * 1024 * 1024


def test_the_spec_states_the_catalogue_rules() -> None:
    spec = (Path(__file__).resolve().parent.parent / "specs" / "livcr-exchange.md").read_text()
    section = spec[spec.index("### 7.5") : spec.index("## 8.")]
    rows = {line.split("`")[1]: line for line in section.splitlines() if line.startswith("| `")}
    for tag, purpose in CATALOGUE.items():
        rule = purpose.attachments
        if rule is None:
            assert tag not in rows
            continue
        names = {MediaType.PDF: "PDF", MediaType.ODT: "ODT", MediaType.ODS: "ODS"}
        names |= {MediaType.PNG: "PNG", MediaType.JPEG: "JPEG"}
        cells = [c.strip() for c in rows[tag].strip("|").split("|")]
        assert set(cells[1].split(", ")) == {names[m] for m in rule.media_types}
        assert cells[2].startswith(f"{rule.max_file_bytes} (")
        assert cells[3].startswith(f"{rule.max_total_bytes} (")
        assert cells[4] == str(rule.max_count)
