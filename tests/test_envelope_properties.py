"""Properties of sealing and opening: tamper-evidence, round trips, and a parser that only ever
raises the library's own errors (spec §6.6, §13)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from factories import NOW, Cell, det_bytes, frame, service_ids, split_envelope
from hypothesis import given, settings
from hypothesis import strategies as st

from livcr_exchange.constants import CHUNK_BYTES
from livcr_exchange.envelope import Header, UnverifiedEnvelope, open_stream
from livcr_exchange.envelope.framing import split_plaintext
from livcr_exchange.errors import LivcrError, NotARecipient, error_codes
from livcr_exchange.keys import Suite

CELL = Cell.build(extra_services=4, seed="properties")
MEMBERS = sorted(CELL.participants)
CODES = error_codes()
FEW = settings(max_examples=25, deadline=None)
SOME = settings(max_examples=50, deadline=None)


def sealed(suite: Suite, recipients: tuple[str, ...], body: bytes) -> bytes:
    return CELL.seal_to(recipients, body, suite=suite)


BODY = b'{"question":"known?","pad":"' + b"x" * 1500 + b'"}'
ENVELOPES = {
    Suite.X25519: sealed(Suite.X25519, ("caw", "clb", "io-politie"), BODY),
    Suite.XWING: sealed(Suite.XWING, ("caw", "clb", "io-politie"), BODY),
}
COSIGNED_BODY = b'{"nonce":"a1","fields":{}}'
COSIGNED = CELL.seal_to(
    ["io-politie"],
    COSIGNED_BODY,
    purpose="terugkoppelingsfiche",
    cosign_block=CELL.cosign_block(COSIGNED_BODY, ["caw", "clb", "coord"]),
)
# (envelope, the recipient that opens it)
ALL_ENVELOPES = [
    (ENVELOPES[Suite.X25519], "caw"),
    (ENVELOPES[Suite.XWING], "clb"),
    (COSIGNED, "io-politie"),
]


def assert_refused(open_it: Callable[[], object]) -> LivcrError:
    """``open_it`` must raise a LivcrError with a registered code; anything else propagates."""
    with pytest.raises(LivcrError) as caught:
        open_it()
    error = caught.value
    assert error.code in CODES, error.code
    assert CODES[error.code] is type(error)
    return error


def opener(envelope: bytes, recipient: str = "caw") -> Callable[[], object]:
    return lambda: CELL.open_as(recipient, envelope)


def flipped(data: bytes, position: int, mask: int) -> bytes:
    out = bytearray(data)
    out[position] ^= mask
    return bytes(out)


def test_unmodified_envelopes_open() -> None:
    for envelope, recipient in ALL_ENVELOPES:
        assert CELL.open_as(recipient, envelope).body in {BODY, COSIGNED_BODY}
    assert CELL.open_as("io-politie", COSIGNED).cosigners == {"caw", "clb", "coord"}


# (a) Any single flipped byte is refused with a registered code.
@st.composite
def flips(draw: st.DrawFn) -> tuple[bytes, str, int, int]:
    envelope, recipient = draw(st.sampled_from(ALL_ENVELOPES))
    header_end = 4 + int.from_bytes(envelope[:4], "big") + 8
    position = draw(
        st.one_of(
            st.integers(0, header_end - 1),  # the header is where the grammar lives
            st.integers(0, len(envelope) - 1),
            st.integers(len(envelope) - 64, len(envelope) - 1),
        )
    )
    return envelope, recipient, position, draw(st.integers(1, 255))


@SOME
@given(flips())
def test_any_flipped_byte_is_refused(case: tuple[bytes, str, int, int]) -> None:
    envelope, recipient, position, mask = case
    assert_refused(opener(flipped(envelope, position, mask), recipient))


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name.lower())
def test_every_position_flipped_is_refused(suite: Suite) -> None:
    """Exhaustive over positions of a one-recipient envelope, for the lowest and highest bit."""
    envelope = sealed(suite, ("caw",), b'{"q":1}')
    seen: set[str] = set()
    for position in range(len(envelope)):
        for mask in (0x01, 0x80):
            seen.add(assert_refused(opener(flipped(envelope, position, mask))).code)
    assert {"bad_signature", "malformed", "unknown_sender"} <= seen


# (b) Round trips for random bodies, recipient sets, senders and suites.
body_sizes = st.one_of(
    st.integers(0, 200 * 1024),
    st.sampled_from([0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES]),
)


@FEW
@given(
    size=body_sizes,
    seed=st.integers(0, 2**32),
    recipients=st.sets(st.sampled_from(MEMBERS), min_size=1),
    sender=st.sampled_from(MEMBERS),
    suite=st.sampled_from(list(Suite)),
)
def test_round_trip(size: int, seed: int, recipients: set[str], sender: str, suite: Suite) -> None:
    body = det_bytes(f"property body {seed}", size)
    envelope = CELL.seal_to(sorted(recipients), body, sender=sender, suite=suite)
    for recipient in recipients:
        opened = CELL.open_as(recipient, envelope)
        assert opened.body == body
        assert opened.sender.participant_id == sender
    for outsider in set(MEMBERS) - recipients:
        with pytest.raises(NotARecipient):
            CELL.open_as(outsider, envelope)


@FEW
@given(
    body=st.binary(max_size=3000),
    suite=st.sampled_from(list(Suite)),
    piece=st.integers(1, 5000),
)
def test_streamed_open_agrees_with_in_memory_open(body: bytes, suite: Suite, piece: int) -> None:
    envelope = CELL.seal_to(["clb"], body, suite=suite)

    def source() -> list[bytes]:
        return [envelope[i : i + piece] for i in range(0, len(envelope), piece)]

    streamed = split_plaintext(
        b"".join(
            open_stream(
                source,
                recipient_id="clb",
                prekeys=CELL["clb"].secrets_by_id(),
                directory=CELL.directory,
                now=NOW + 60,
                judged_at=NOW + 30,
            )
        )
    )[0]
    assert streamed == body == CELL.open_as("clb", envelope).body


# (c) The parser raises only LivcrError, on anything.
def outcome(parse: Callable[[bytes], object], data: bytes) -> str:
    """ "ok" or the code of the LivcrError ``parse`` raises; any other exception propagates."""
    try:
        parse(data)
    except LivcrError as error:
        return error.code
    return "ok"


def parse_outcome(data: bytes) -> None:
    assert outcome(UnverifiedEnvelope.parse, data) in {*CODES, "ok"}


@SOME
@given(st.binary(max_size=4096))
def test_parse_of_random_bytes(data: bytes) -> None:
    parse_outcome(data)
    assert_refused(opener(data))


@SOME
@given(
    suite=st.sampled_from([0, 1, 2, 3]),
    tail=st.binary(max_size=2048),
    body=st.binary(max_size=64),
)
def test_parse_of_random_headers_in_a_valid_frame(suite: int, tail: bytes, body: bytes) -> None:
    """Random bytes behind a valid magic, version and frame reach deep into the header grammar."""
    header = b"LVCR\x02" + bytes((suite,)) + tail
    assert outcome(Header.parse, header) in {*CODES, "ok"}
    parse_outcome(frame(header, body, bytes(64)))


@SOME
@given(case=st.sampled_from(ALL_ENVELOPES), data=st.data())
def test_truncated_envelopes_are_refused(case: tuple[bytes, str], data: st.DataObject) -> None:
    envelope, recipient = case
    cut = data.draw(st.integers(0, len(envelope) - 1), label="cut")
    assert_refused(lambda: UnverifiedEnvelope.parse(envelope[:cut]))
    header, body, signature = split_envelope(envelope)
    header_cut = data.draw(st.integers(0, len(header) - 1), label="header_cut")
    assert_refused(lambda: Header.parse(header[:header_cut]))
    assert_refused(lambda: UnverifiedEnvelope.parse(frame(header[:header_cut], body, signature)))
    body_cut = data.draw(st.integers(0, len(body) - 1), label="body_cut")
    assert_refused(opener(frame(header, body[:body_cut], signature), recipient))


@FEW
@given(case=st.sampled_from(ALL_ENVELOPES), data=st.data())
def test_truncated_streams_are_refused(case: tuple[bytes, str], data: st.DataObject) -> None:
    envelope, recipient = case
    cut = data.draw(st.integers(0, len(envelope) - 1), label="cut")

    def run() -> None:
        for _ in open_stream(
            lambda: [envelope[:cut]],
            recipient_id=recipient,
            prekeys=CELL[recipient].secrets_by_id(),
            directory=CELL.directory,
            now=NOW + 60,
            judged_at=NOW + 30,
        ):
            pass

    assert_refused(run)


def test_members_include_the_extra_services() -> None:
    assert set(service_ids(4)) <= set(MEMBERS)
    assert len(MEMBERS) == 8
