"""What a gateway deletes is gone from its files, not only from its tables.

An erased case (answered with a `wissingsbevestiging`) and a destroyed prekey secret (forward
secrecy) must not be recoverable from the database or its write-ahead log: the sealed bytes are
searched for in the raw files while the gateway still runs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import GatewayStore

NOW = 1_800_000_000


def raw_files(store: GatewayStore) -> bytes:
    """The database and whatever write-ahead log it left, as one byte string."""
    found = b""
    for suffix in ("", "-wal"):
        path = store.path.with_name(store.path.name + suffix)
        if path.exists():
            found += path.read_bytes()
    return found


def dossier_row(message_id: bytes, case_ref: str, sealed: bytes) -> tuple[object, ...]:
    return (message_id, "received", case_ref, "aanmelding", "caw", "coord", None, NOW, 7, sealed)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[GatewayStore]:
    store = GatewayStore(tmp_path / "gateway.sqlite3")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_an_erased_case_leaves_no_sealed_bytes_in_the_files(store: GatewayStore) -> None:
    erased, kept = os.urandom(3000), os.urandom(3000)
    await store.store_received(dossier_row(b"\x01" * 16, "case-hsya2kgxwhlbdymy2yeaenrnzu", erased))
    await store.store_received(dossier_row(b"\x02" * 16, "case-gljsaxbti244mn4fwkb4d4okoi", kept))
    assert erased in raw_files(store)

    assert await store.erase_case("case-hsya2kgxwhlbdymy2yeaenrnzu", NOW + 60) == [b"\x01" * 16]
    files = raw_files(store)
    assert erased[:64] not in files
    assert kept[:64] in files  # the search would have found it


async def test_a_destroyed_prekey_secret_is_gone_from_the_files(store: GatewayStore) -> None:
    expired, current = os.urandom(96), os.urandom(96)
    await store.add_prekey(b"\x0a" * 16, expired, b"statement-a", NOW - 100, NOW - 10)
    await store.add_prekey(b"\x0b" * 16, current, b"statement-b", NOW - 10, NOW + 1000)
    assert expired in raw_files(store)

    assert await store.destroy_prekeys_before(NOW) == 1
    files = raw_files(store)
    assert expired not in files
    assert current in files
