"""`livcr audit fetch` against a running hub: the evidence verifies offline, later audits prove
the log extends the earlier one, and a log that went back is caught."""

from __future__ import annotations

import hub_harness
from factories import CELL_ID, NOW, det_bytes, expect_error
from hub_harness import LOG_KEY, ORIGIN, HubHarness
from test_api_log import activity

from hub.witnessing import publish_policy
from livcr_exchange.audit.checkpoint import Checkpoint, sign_checkpoint
from livcr_exchange.audit.cosignature import WitnessKey
from livcr_exchange.errors import ProofInvalid
from livcr_exchange.keys import IdentityKey
from livcr_exchange.oversight import verify_evidence
from livcr_exchange.oversight.evidence import Evidence
from livcr_exchange.service.audit_cli import fetch_evidence
from livcr_exchange.witness_policy import WitnessPolicy

clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture


async def fetch(harness: HubHarness, auditor: str, earlier: list[str]) -> Evidence:
    return await fetch_evidence(
        harness.typed_client(auditor),
        cell_id=CELL_ID,
        origin=ORIGIN,
        root_key=harness.cell.root.public.to_text(),
        log_key=LOG_KEY.public.to_text(),
        earlier=earlier,
        now=NOW,
    )


async def test_evidence_verifies_and_a_later_audit_proves_consistency(
    harness: HubHarness,
) -> None:
    await activity(harness)
    first = await fetch(harness, "coord", [])
    verified = verify_evidence(first)
    assert len(first.leaves) == await harness.store.tree_size()
    assert verified.withheld == 0
    assert verified.consistent_from_size is None
    await activity(harness, "case-g67ycfcdwstgwxo4yetidz2cpq")
    second = verify_evidence(await fetch(harness, "coord", first.checkpoints))
    assert second.consistent_from_size == len(first.leaves)
    assert second.checkpoints[-1].size > len(first.leaves)


async def test_a_participant_without_oversight_sees_hashes_only(harness: HubHarness) -> None:
    await activity(harness)
    await activity(harness, "case-wbtja7wrsss2m5f6iequpznnkq")
    verified = verify_evidence(await fetch(harness, "io-politie", []))
    assert verified.withheld > 0  # the tree still verifies from every leaf hash


async def test_a_log_shorter_than_an_earlier_audit_is_a_rollback(harness: HubHarness) -> None:
    await activity(harness)
    size = await harness.store.tree_size()
    # A checkpoint the log key signed earlier, of a longer tree than the hub now serves.
    earlier = sign_checkpoint(Checkpoint(ORIGIN, size + 5, bytes(32)), ORIGIN, LOG_KEY)
    evidence = await fetch(harness, "coord", [earlier.decode()])
    with expect_error(ProofInvalid):
        verify_evidence(evidence)


async def test_the_evidence_carries_the_cells_witness_policy(harness: HubHarness) -> None:
    """The report judges cosignatures by the root-signed policy the directory serves."""
    await activity(harness)
    witness = IdentityKey.from_seed(det_bytes("audit fetch witness", 32))
    policy = WitnessPolicy(CELL_ID, 1, 1, (WitnessKey("witness.example/w", witness.public.raw),))
    await publish_policy(harness.store, harness.config, harness.cell.root, policy, NOW)
    evidence = await fetch(harness, "coord", [])
    assert evidence.witness_policy is not None
    current = verify_evidence(evidence).checkpoints[-1]
    assert (current.quorum, current.witnessed_by) == (1, [])  # nobody cosigned it here
