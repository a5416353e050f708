"""Retention deletes a closed case's envelopes and leaf data; the log still verifies."""

from __future__ import annotations

from pathlib import Path

from conftest import StoreTarget

from hub.config import parse_config
from hub.log import TransparencyLog
from hub.operations import pending_leaf
from hub.operator import verify_log
from hub.store.base import CaseRecord, NewEnvelope, WriteBatch
from livcr_exchange.audit.leaves import EnvelopeAccepted
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
                100, message_id, "caw", "aanmelding", case_ref, ("coord",), bytes(32), 10
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
