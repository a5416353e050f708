"""Document vectors for specs/generate_vectors.py: envelopes whose plaintext carries
attachments, one refusal per check of spec §6.7, and documents judged by their content."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import msgspec

from livcr_exchange.attachments import AttachmentRef, MediaType, attachment_digest
from livcr_exchange.document_examples import jpeg, odf, pdf, png
from livcr_exchange.keys import Suite
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE, encode_body

DESCRIPTION = (
    "Envelopes carrying attachments after their body JSON, opened by a recipient (spec §6.6, "
    "§6.7): a positive with each document type, one negative per attachment check in order; "
    "and documents judged by content against a declared media type."
)
MINUTES = "verslag_besluit"
REFERRAL = "aanmelding"
MIB = 1024 * 1024
PDF, PNG, JPEG, ODT, ODS = (
    MediaType.PDF,
    MediaType.PNG,
    MediaType.JPEG,
    MediaType.ODT,
    MediaType.ODS,
)
ACTIVE_PDF = pdf(extra=b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> ")
MACRO_ODT = odf(ODT, extra_entries={"Basic/Standard/Module1.xml": b"<script:module/>"})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def ref(name: str, media_type: str, data: bytes, size: int | None = None) -> dict[str, Any]:
    """An attachment reference as JSON; ``size`` overrides the data's length (a lie)."""
    listed = AttachmentRef(
        name=name,
        media_type=media_type,
        size=len(data) if size is None else size,
        digest=attachment_digest(data).hex(),
    )
    return msgspec.to_builtins(listed)  # type: ignore[no-any-return]


def body(purpose: str, refs: list[dict[str, Any]] | None) -> bytes:
    """The purpose's example body with ``attachments`` set (left out when None)."""
    raw: dict[str, Any] = msgspec.json.decode(encode_body(example_body(purpose)))
    raw.pop("attachments", None)
    if refs is not None:
        raw["attachments"] = refs
    return msgspec.json.encode(raw)


def document_vectors(envelopes: Any) -> Iterator[dict[str, Any]]:
    """``envelopes`` is the generator's EnvelopeVectors: its cell, pinned stanzas and seal."""
    yield from _positives(envelopes)
    yield from _refusals(envelopes)
    yield from _contents()


def _documents_vector(
    envelopes: Any,
    name: str,
    expect: str,
    purpose: str,
    body_json: bytes,
    attachments: list[bytes],
    received: list[tuple[str, str, bytes]] | None = None,
) -> dict[str, Any]:
    sealed = envelopes.seal(
        name,
        suite=Suite.XWING,
        recipients=("caw",),
        body=body_json,
        purpose=purpose,
        attachments=tuple(attachments),
    )
    vector: dict[str, Any] = envelopes.vector(sealed, name, expect)
    vector["kind"] = "documents"
    for unused in ("seen", "intermediate"):
        vector.pop(unused, None)
    if expect == "ok":
        vector["attachments"] = [
            {"name": n, "media_type": t, "data": b64(d)} for n, t, d in received or []
        ]
    return vector


def _positives(envelopes: Any) -> Iterator[dict[str, Any]]:
    files = [
        ("verslag.pdf", PDF, pdf("Verslag van het overleg")),
        ("genogram.png", PNG, png(3, 2)),
        ("brief.jpg", JPEG, jpeg()),
        ("actieplan.odt", ODT, odf(ODT)),
        ("planning.ods", ODS, odf(ODS)),
    ]
    refs = [ref(n, t, d) for n, t, d in files]
    yield _documents_vector(
        envelopes,
        "documents_ok_minutes_with_every_type",
        "ok",
        MINUTES,
        body(MINUTES, refs),
        [d for _, _, d in files],
        [(n, t.value, d) for n, t, d in files],
    )
    scan = [("Schoolrapport 2029.pdf", PDF, pdf("Rapport")), ("brief école.jpeg", JPEG, jpeg())]
    yield _documents_vector(
        envelopes,
        "documents_ok_referral_with_a_scan",
        "ok",
        REFERRAL,
        body(REFERRAL, [ref(n, t, d) for n, t, d in scan]),
        [d for _, _, d in scan],
        [(n, t.value, d) for n, t, d in scan],
    )
    yield _documents_vector(
        envelopes, "documents_ok_body_only", "ok", MINUTES, body(MINUTES, []), [], []
    )


def _refusals(envelopes: Any) -> Iterator[dict[str, Any]]:  # one defect per case
    doc = pdf()
    rule = CATALOGUE[REFERRAL].attachments
    assert rule is not None  # noqa: S101  (the catalogue gives referrals documents)
    many = [pdf(str(i)) for i in range(rule.max_count + 1)]
    under_cap = rule.max_file_bytes - MIB
    cases: list[tuple[str, str, str, bytes, list[bytes]]] = [
        ("attachment_not_allowed_named", "attachment_not_allowed", "screening_vraag",
         body("screening_vraag", [ref("a.pdf", PDF, doc)]), [doc]),
        ("attachment_not_allowed_unnamed", "attachment_not_allowed", "screening_vraag",
         body("screening_vraag", None), [doc]),
        ("attachment_not_allowed_count", "attachment_not_allowed", REFERRAL,
         body(REFERRAL, [ref(f"s{i}.pdf", PDF, d) for i, d in enumerate(many)]), many),
        ("attachment_type_not_allowed", "attachment_type_not_allowed", MINUTES,
         body(MINUTES, [ref("setup.exe", "application/x-msdownload", b"MZ")]), [b"MZ"]),
        ("attachment_name_invalid_path", "attachment_name_invalid", MINUTES,
         body(MINUTES, [ref("../verslag.pdf", PDF, doc)]), [doc]),
        ("attachment_name_invalid_extension", "attachment_name_invalid", MINUTES,
         body(MINUTES, [ref("verslag.png", PDF, doc)]), [doc]),
        ("attachment_name_invalid_format_character", "attachment_name_invalid", MINUTES,
         body(MINUTES, [ref("verslag\u202egnp.pdf", PDF, doc)]), [doc]),
        ("attachment_name_invalid_not_nfc", "attachment_name_invalid", MINUTES,
         body(MINUTES, [ref("e\u0301cole.pdf", PDF, doc)]), [doc]),
        ("attachment_name_invalid_repeated", "attachment_name_invalid", MINUTES,
         body(MINUTES, [ref("v.pdf", PDF, doc), ref("V.PDF", PDF, doc)]), [doc, doc]),
        # Declared sizes are judged before any byte: these envelopes are small.
        ("attachment_too_large_file", "attachment_too_large", REFERRAL,
         body(REFERRAL, [ref("scan.pdf", PDF, doc, rule.max_file_bytes + 1)]), [doc]),
        ("attachment_too_large_total", "attachment_too_large", REFERRAL,
         body(REFERRAL, [ref(f"s{i}.pdf", PDF, doc, under_cap) for i in range(3)]), [doc]),
        ("attachment_size_mismatch_short", "attachment_size_mismatch", MINUTES,
         body(MINUTES, [ref("v.pdf", PDF, doc)]), [doc[:-1]]),
        ("attachment_size_mismatch_long", "attachment_size_mismatch", MINUTES,
         body(MINUTES, [ref("v.pdf", PDF, doc)]), [doc + b"\n"]),
        ("attachment_digest_mismatch", "attachment_digest_mismatch", MINUTES,
         body(MINUTES, [ref("v.pdf", PDF, pdf("eerste"))]), [pdf("tweede")]),
        ("attachment_type_mismatch_png_as_pdf", "attachment_type_mismatch", MINUTES,
         body(MINUTES, [ref("v.pdf", PDF, png())]), [png()]),
        ("attachment_type_mismatch_ods_as_odt", "attachment_type_mismatch", MINUTES,
         body(MINUTES, [ref("v.odt", ODT, odf(ODS))]), [odf(ODS)]),
        ("attachment_active_content_pdf", "attachment_active_content", MINUTES,
         body(MINUTES, [ref("v.pdf", PDF, ACTIVE_PDF)]), [ACTIVE_PDF]),
        ("attachment_active_content_odt", "attachment_active_content", MINUTES,
         body(MINUTES, [ref("v.odt", ODT, MACRO_ODT)]), [MACRO_ODT]),
        ("body_schema_violation_reference", "body_schema_violation", MINUTES,
         body(MINUTES, [{**ref("v.pdf", PDF, doc), "digest": "not hex"}]), [doc]),
    ]  # fmt: skip
    for defect, expect, purpose, body_json, attachments in cases:
        name = f"documents_{defect}"
        yield _documents_vector(envelopes, name, expect, purpose, body_json, attachments)


def _contents() -> Iterator[dict[str, Any]]:
    stream_noise = pdf().replace(b"stream\nBT", b"stream\n\x00/JS\x01BT")
    cases: list[tuple[str, str, MediaType, bytes]] = [
        ("ok_pdf", "ok", PDF, pdf()),
        ("ok_png", "ok", PNG, png()),
        ("ok_jpeg", "ok", JPEG, jpeg()),
        ("ok_odt", "ok", ODT, odf(ODT)),
        ("ok_ods", "ok", ODS, odf(ODS)),
        ("ok_pdf_short_name_in_stream_data", "ok", PDF, stream_noise),
        ("type_mismatch_pdf_without_eof", "attachment_type_mismatch", PDF, pdf()[:-7]),
        ("type_mismatch_png_without_iend", "attachment_type_mismatch", PNG, png()[:-12]),
        ("type_mismatch_executable_as_jpeg", "attachment_type_mismatch", JPEG, b"MZ\x90\x00"),
        ("type_mismatch_odt_of_another_type", "attachment_type_mismatch", ODT, odf(ODS)),
        ("active_content_pdf_launch", "attachment_active_content", PDF,
         pdf(extra=b"/OpenAction << /S /Launch /F (cmd.exe) >> ")),
        ("active_content_pdf_embedded_file", "attachment_active_content", PDF,
         pdf(extra=b"/Names << /EmbeddedFiles 9 0 R >> ")),
        ("active_content_pdf_escaped_name", "attachment_active_content", PDF,
         pdf(extra=b"/AA << /O << /S /J#61vaScript >> >> ")),
        ("active_content_ods_scripts", "attachment_active_content", ODS,
         odf(ODS, extra_entries={"Scripts/python/macro.py": b"pass"})),
    ]  # fmt: skip
    for defect, expect, media_type, data in cases:
        yield {
            "kind": "attachment_content",
            "name": f"documents_content_{defect}",
            "expect": expect,
            "comment": "",
            "media_type": media_type.value,
            "data": b64(data),
        }
