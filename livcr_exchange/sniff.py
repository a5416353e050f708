"""Judging a document's type by its content, fed piece by piece in constant memory (§6.7).

A receiver never trusts a declared media type or a filename: each sniffer reads the bytes as
they stream by and refuses a document that is not what it says (``attachment_type_mismatch``)
or that carries active content (``attachment_active_content``). The checks are what a streaming
scan can see, no more; spec §6.7 states their limits (a PDF object stream that is compressed
hides its dictionary keys; a zip entry's name can only be checked where a header shows it).
"""

from __future__ import annotations

import re
from typing import Final

from .attachments import MediaType
from .errors import AttachmentActiveContent, AttachmentTypeMismatch

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_END: Final = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # an empty IEND chunk and its CRC
_JPEG_START: Final = b"\xff\xd8\xff"
_JPEG_END: Final = b"\xff\xd9"
_PDF_HEADER: Final = re.compile(rb"\A%PDF-[12]\.[0-9]")
_PDF_EOF_WINDOW: Final = 1024  # "%%EOF" must lie within the last KiB, as readers look for it
# PDF names that run code, start programs or carry files. A name may spell a character as #xx,
# so names are decoded before they are compared.
_PDF_ACTIVE: Final = (b"/JavaScript", b"/JS", b"/Launch", b"/EmbeddedFile")
_PDF_ACTIVE_IN_STREAM: Final = (b"/JavaScript", b"/Launch", b"/EmbeddedFile")
# A dictionary's stream data starts after "stream" and an end of line (ISO 32000-1 §7.3.8).
_PDF_STREAM: Final = re.compile(rb"(?<!end)stream(?:\r\n|\n)")
_PDF_NAME: Final = re.compile(rb"/(?:[A-Za-z]|#[0-9A-Fa-f]{2}){2,20}")
_PDF_OVERLAP: Final = 64  # longer than any spelling of an active name the pattern reads
_ZIP_LOCAL: Final = b"PK\x03\x04"
_ZIP_CENTRAL: Final = b"PK\x01\x02"
_ZIP_END: Final = b"PK\x05\x06"
_ODF_FIRST_NAME: Final = b"mimetype"
# Macro and script folders of an ODF package (OpenOffice Basic, and Scripts/ for the others).
_ODF_ACTIVE_PREFIXES: Final = (b"basic/", b"scripts/")
_NAME_PREFIX_BYTES: Final = 8  # enough to tell an entry name from the active folders


class Sniffer:
    """Fed a document's bytes in order; ``finish`` judges it. Raises only the two codes."""

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError


class _HeadTail(Sniffer):
    """Keeps the first ``head`` and the last ``tail`` bytes; judges them at the end."""

    def __init__(self, head: int, tail: int) -> None:
        self._head_size, self._tail_size = head, tail
        self.head = b""
        self.tail = b""

    def feed(self, data: bytes) -> None:
        if len(self.head) < self._head_size:
            self.head += data[: self._head_size - len(self.head)]
        self.tail = (self.tail + data)[-self._tail_size :]


class PngSniffer(_HeadTail):
    """PNG signature, an IHDR chunk first, an IEND chunk last."""

    def __init__(self) -> None:
        super().__init__(16, len(_PNG_END))

    def finish(self) -> None:
        if not self.head.startswith(_PNG_SIGNATURE) or self.head[12:16] != b"IHDR":
            raise AttachmentTypeMismatch("not a PNG image: no PNG signature and IHDR chunk")
        if self.tail != _PNG_END:
            raise AttachmentTypeMismatch("not a PNG image: it does not end with IEND")


class JpegSniffer(_HeadTail):
    """JPEG start-of-image marker first, end-of-image marker last."""

    def __init__(self) -> None:
        super().__init__(len(_JPEG_START), len(_JPEG_END))

    def finish(self) -> None:
        if self.head != _JPEG_START or self.tail != _JPEG_END:
            raise AttachmentTypeMismatch("not a JPEG image: no SOI marker first and EOI last")


class PdfSniffer(_HeadTail):
    """A PDF header first, ``%%EOF`` near the end, and no active-content name.

    ``/JavaScript``, ``/Launch`` and ``/EmbeddedFile`` are refused anywhere in the bytes: eight
    or more fixed bytes almost never occur by chance in compressed data. ``/JS`` is refused
    outside stream data only (between a dictionary's ``stream`` and ``endstream``, three bytes
    would match random data once in a few megabytes); a JavaScript action also names
    ``/S /JavaScript``, which is refused everywhere.
    """

    def __init__(self) -> None:
        super().__init__(8, _PDF_EOF_WINDOW)
        self._carry = b""
        self._in_stream = False

    def feed(self, data: bytes) -> None:
        super().feed(data)
        window = self._carry + data
        position = 0
        while True:
            if self._in_stream:
                end = window.find(b"endstream", position)
                found, stop = end >= 0, len(window) if end < 0 else end
                after = stop + len(b"endstream")
            else:
                start = _PDF_STREAM.search(window, position)
                found, stop = start is not None, len(window) if start is None else start.end()
                after = stop
            _refuse_active_pdf_names(window[position:stop], in_stream=self._in_stream)
            if not found:
                break
            position = after
            self._in_stream = not self._in_stream
        # Rescan an overlap: a name or keyword may be cut between two pieces (a name seen
        # twice is judged twice, harmlessly).
        self._carry = window[max(position, len(window) - _PDF_OVERLAP) :]

    def finish(self) -> None:
        if not _PDF_HEADER.match(self.head):
            raise AttachmentTypeMismatch("not a PDF: no %PDF-x.y header")
        if b"%%EOF" not in self.tail:
            raise AttachmentTypeMismatch("not a PDF: no %%EOF marker at its end")


def _refuse_active_pdf_names(text: bytes, *, in_stream: bool) -> None:
    active = _PDF_ACTIVE_IN_STREAM if in_stream else _PDF_ACTIVE
    for match in _PDF_NAME.finditer(text):
        name = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), match.group())
        if name.startswith(active):
            raise AttachmentActiveContent(f"a PDF with active content ({name[:20]!r})")


class OdfSniffer(Sniffer):
    """An ODF package of ``media_type``: a zip whose first entry is the stored, uncompressed
    ``mimetype`` holding exactly that type (ODF 1.3 part 2, §3.3), with no entry under
    ``Basic/`` or ``Scripts/`` in any local or central-directory header seen while streaming.
    """

    def __init__(self, media_type: MediaType) -> None:
        self._expected = media_type.value.encode("ascii")
        self._first_size = 30 + len(_ODF_FIRST_NAME) + len(self._expected)
        self._first = b""
        self._window = b""
        self._seen_end = False

    def feed(self, data: bytes) -> None:
        if len(self._first) < self._first_size:
            self._first += data[: self._first_size - len(self._first)]
        self._window += data
        self._scan(final=False)

    def finish(self) -> None:
        self._scan(final=True)
        first = self._first
        if len(first) < self._first_size or first[:4] != _ZIP_LOCAL:
            raise AttachmentTypeMismatch("not an ODF package: no zip entry first")
        method = int.from_bytes(first[8:10], "little")
        stored = int.from_bytes(first[18:22], "little"), int.from_bytes(first[22:26], "little")
        name_length = int.from_bytes(first[26:28], "little")
        extra_length = int.from_bytes(first[28:30], "little")
        name = first[30 : 30 + name_length]
        value = first[30 + name_length : 30 + name_length + len(self._expected)]
        if (method, name, extra_length) != (0, _ODF_FIRST_NAME, 0) or stored != (
            len(self._expected),
            len(self._expected),
        ):
            raise AttachmentTypeMismatch("not an ODF package: mimetype is not its first entry")
        if value != self._expected:
            raise AttachmentTypeMismatch(f"an ODF package of type {value[:80]!r}")
        if not self._seen_end:
            raise AttachmentTypeMismatch("not an ODF package: no end of central directory")

    def _scan(self, *, final: bool) -> None:
        window = self._window
        position = 0
        while (found := window.find(b"PK", position)) >= 0:
            kept = self._check_header(window, found, final=final)
            if kept:
                break
            position = found + 2
        else:
            # Keep a trailing "P" that may start a signature in the next piece.
            found = max(len(window) - 1, 0)
        self._window = window[found:]

    def _check_header(self, window: bytes, at: int, *, final: bool) -> bool:
        """Check the header at ``at``; True when more bytes are needed to judge it."""
        signature = window[at : at + 4]
        name_offset = {_ZIP_LOCAL: 30, _ZIP_CENTRAL: 46}.get(signature)
        if len(signature) < 4 or name_offset is None:
            self._seen_end = self._seen_end or signature == _ZIP_END
            return len(signature) < 4 and not final
        if len(window) < at + name_offset + _NAME_PREFIX_BYTES and not final:
            return True
        length_at = at + (26 if signature == _ZIP_LOCAL else 28)
        name_length = int.from_bytes(window[length_at : length_at + 2], "little")
        start = at + name_offset
        name = window[start : start + min(name_length, _NAME_PREFIX_BYTES)].lower()
        if name.startswith(_ODF_ACTIVE_PREFIXES):
            raise AttachmentActiveContent("an ODF package with macros or scripts")
        return False


def sniffer_for(media_type: MediaType) -> Sniffer:
    """The content check for a declared media type."""
    if media_type is MediaType.PDF:
        return PdfSniffer()
    if media_type is MediaType.PNG:
        return PngSniffer()
    if media_type is MediaType.JPEG:
        return JpegSniffer()
    return OdfSniffer(media_type)


_STARTS: Final = {
    MediaType.PDF: b"%PDF-",
    MediaType.PNG: _PNG_SIGNATURE,
    MediaType.JPEG: _JPEG_START,
    MediaType.ODT: _ZIP_LOCAL,
    MediaType.ODS: _ZIP_LOCAL,
}
START_BYTES: Final = max(len(start) for start in _STARTS.values())
_ODF_MIMETYPE_AT: Final = 30 + len(_ODF_FIRST_NAME)  # a stored mimetype entry's content


def check_start(media_type: MediaType, head: bytes) -> None:
    """Refuse a document as soon as its first bytes (any number) cannot start its type, so an
    uploader learns it before the whole file streamed; ``finish`` still judges the rest.

    Raises:
        AttachmentTypeMismatch: the first bytes are not those its type starts with.
    """
    start = _STARTS[media_type]
    if head[: len(start)] != start[: len(head)]:
        raise AttachmentTypeMismatch(f"not a {media_type.value} document: it starts otherwise")


def media_type_of(head: bytes) -> MediaType | None:
    """The type a document's first bytes (a KiB is plenty) announce, or None: for choosing a
    declared type; the sniffer of that type still judges the whole."""
    for media_type in (MediaType.PDF, MediaType.PNG, MediaType.JPEG):
        if head.startswith(_STARTS[media_type]):
            return media_type
    if head.startswith(_ZIP_LOCAL) and head[30:_ODF_MIMETYPE_AT] == _ODF_FIRST_NAME:
        for media_type in (MediaType.ODT, MediaType.ODS):
            value = media_type.value.encode("ascii")
            if head[_ODF_MIMETYPE_AT : _ODF_MIMETYPE_AT + len(value)] == value:
                return media_type
    return None
