"""Retention deletes a closed case's envelopes and leaf data; the log still verifies."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import StoreTarget

from hub.config import parse_config
from hub.log import TransparencyLog
from hub.operations import pending_leaf
from hub.operator import verify_log
from hub.store.base import CaseRecord, NewEnvelope, WriteBatch
from hub.store.sqlite import SQLiteStore
from livcr_exchange.audit.leaves import EnvelopeAccepted, envelope_hash
from livcr_exchange.keys import IdentityKey

LOG_KEY = IdentityKey.from_seed(bytes(range(32)))
ROOT = IdentityKey.from_seed(bytes(32))


async def test_purge_keeps_the_tree_verifiable(tmp_path: Path, store_target: StoreTarget) -> None:
    config = parse_config(
        f'[hub]\ncell_id = "gent"\nroot_key = "{ROOT.public.to_text()}"\n', tmp_path
    )
    store = store_target.new()
    await store.open()
    try:
        for case_ref in ("case-old", "case-open"):
            message_id = case_ref.encode().ljust(16, b".")
            leaf = EnvelopeAccepted(
                100, bytes(16), message_id, "caw", "aanmelding", case_ref, ("coord",), bytes(32), 10
            )
            await store.commit(
                WriteBatch(
                    envelopes=[
                        NewEnvelope(
                            message_id,
                            "caw",
                            "aanmelding",
                            case_ref,
                            ("coord",),
                            100,
                            10_000,
                            6,
                            envelope_hash(b"sealed"),
                            b"sealed",
                        )
                    ],
                    cases=[
                        CaseRecord(
                            case_ref,
                            "afgesloten",
                            None,
                            None,
                            frozenset({"caw", "coord"}),
                            {},
                            0,
                            50,
                            500 if case_ref == "case-old" else None,
                        )
                    ],
                    leaves=[pending_leaf(leaf, case_ref)],
                )
            )
        log = TransparencyLog(store, config.origin, LOG_KEY)
        await log.save_checkpoint()
        assert await store.purge_case("case-old", limit=100) == 2  # one envelope, one leaf
        assert await store.purge_case("case-old", limit=100) == 0  # idempotent
        remaining = await store.leaves(0, 2)
        assert [data is None for _, _, data in remaining] == [True, False]
        assert await store.delivery("coord", b"case-old........") is None
        report = await verify_log(store, config, LOG_KEY.public.raw)
        assert report.ok, report.problems
        assert report.retained == 1
    finally:
        await store.close()


def closed_case(case_ref: str, purge_after: int | None) -> CaseRecord:
    return CaseRecord(
        case_ref, "afgesloten", None, None, frozenset({"caw", "coord"}), {}, 0, 50, purge_after
    )


async def test_purged_data_is_gone_from_the_sqlite_files(tmp_path: Path) -> None:
    """Retention deletes, it does not only hide: the purged envelope and leaf are not in the
    database or its write-ahead log, while the hub still runs."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    await store.open()
    try:
        blobs = {"case-old": os.urandom(2000), "case-open": os.urandom(2000)}
        for case_ref, blob in blobs.items():
            message_id = case_ref.encode().ljust(16, b".")
            leaf = EnvelopeAccepted(
                100,
                bytes(16),
                message_id,
                "caw",
                "aanmelding",
                case_ref,
                ("coord",),
                bytes(32),
                2000,
            )
            envelope = NewEnvelope(
                message_id,
                "caw",
                "aanmelding",
                case_ref,
                ("coord",),
                100,
                10_000,
                len(blob),
                envelope_hash(blob),
                blob,
            )
            purge_after = 500 if case_ref == "case-old" else None
            await store.commit(
                WriteBatch(
                    envelopes=[envelope],
                    cases=[closed_case(case_ref, purge_after)],
                    leaves=[pending_leaf(leaf, case_ref)],
                )
            )
        old_leaf = (await store.leaves(0, 1))[0][2]
        assert old_leaf is not None
        assert blobs["case-old"] in raw_files(store.path)

        assert await store.purge_due(now=1000, limit=100) == 2  # its envelope and its leaf
        files = raw_files(store.path)
        assert blobs["case-old"][:64] not in files
        assert old_leaf not in files
        assert blobs["case-open"][:64] in files  # the search would have found it
    finally:
        await store.close()


def raw_files(database: Path) -> bytes:
    """The database and whatever write-ahead log it has, as one byte string."""
    found = b""
    for suffix in ("", "-wal"):
        path = database.with_name(database.name + suffix)
        if path.exists():
            found += path.read_bytes()
    return found
