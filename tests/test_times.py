"""Times for people: the core's ISO 8601 rendering agrees with the standard library's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from factories import DAY, NOW, Cell
from hypothesis import given
from hypothesis import strategies as st

from livcr_exchange.errors import KeyNotValid, KeyRevoked
from livcr_exchange.times import iso8601

LAST_SECOND_OF_9999 = 253_402_300_799


@given(st.integers(min_value=0, max_value=LAST_SECOND_OF_9999))
def test_iso8601_agrees_with_datetime(seconds: int) -> None:
    expected = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert iso8601(seconds) == expected


def test_known_instants() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00Z"
    assert iso8601(951_782_400) == "2000-02-29T00:00:00Z"
    assert iso8601(1_796_281_678) == "2026-12-03T07:07:58Z"


def test_error_details_carry_iso_times() -> None:
    cell = Cell.build()
    directory = cell.directory_with(revocations=[cell.revocation("caw", NOW - 60)])
    with pytest.raises(KeyRevoked) as raised:
        directory.entry_for_key("caw", cell.identity("caw").key_id, NOW)
    assert str(raised.value).endswith(" of caw revoked at 2029-12-31T23:59:00Z")
    with pytest.raises(KeyNotValid) as raised:
        cell.directory_with().entry_for_key("caw", cell.identity("caw").key_id, NOW + 400 * DAY)
    assert "valid [2029-01-01T00:00:00Z, 2031-01-01T00:00:00Z), judged at 2031-02-05" in str(
        raised.value
    )
