"""Small, valid, fictitious documents of each attachment type, for tests, vectors and the demo.

Built in code, byte for byte reproducible: a one-page PDF, a tiny PNG and JPEG, and ODF
packages written as stored zip entries (``mimetype`` first, as ODF requires).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

from .attachments import MediaType


def pdf(text: str = "Verslag", *, extra: bytes = b"") -> bytes:
    """A one-page PDF 1.4 with a correct cross-reference table; ``extra`` goes in the catalog
    (tests put active content there)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width: int = 2, height: int = 2) -> bytes:
    """A grey ``width`` x ``height`` PNG."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 9))
        + _png_chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """The markers a JPEG starts and ends with, around a minimal JFIF segment."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\xff\xd9"


def _stored_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A zip of stored (uncompressed) entries, with no extra fields and a fixed date."""
    local, central = bytearray(), bytearray()
    for name, data in entries:
        raw = name.encode("utf-8")
        crc = zlib.crc32(data) & 0xFFFFFFFF
        fields = struct.pack(
            "<HHHHHIIIHH", 20, 0, 0, 0, 0x21, crc, len(data), len(data), len(raw), 0
        )
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields
        central += struct.pack("<HHHII", 0, 0, 0, 0, len(local)) + raw
        local += b"PK\x03\x04" + fields + raw + data
    end = struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(central), len(local), 0)
    return bytes(local + central + b"PK\x05\x06" + end)


def odf(
    media_type: MediaType = MediaType.ODT, *, extra_entries: Mapping[str, bytes] | None = None
) -> bytes:
    """An ODF package of ``media_type``: ``mimetype`` first, then a manifest and content."""
    return _stored_zip(
        [
            ("mimetype", media_type.value.encode("ascii")),
            ("META-INF/manifest.xml", b"<manifest:manifest/>"),
            ("content.xml", b"<office:document-content/>"),
            *(extra_entries or {}).items(),
        ]
    )
