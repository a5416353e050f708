"""Finding: removal did not cut what was already queued. A member removed from a case fetches
none of the case's envelopes queued before its removal; each withdrawal is a log leaf."""

from __future__ import annotations

import attack_harness
import hub_harness
from hub_harness import HubHarness

from livcr_exchange.audit.leaves import DeliveryWithdrawn
from livcr_exchange.envelope import UnverifiedEnvelope

clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture


async def test_removal_withdraws_what_is_queued_for_the_removed_member(
    harness: HubHarness,
) -> None:
    case_ref = attack_harness.minted("removal")
    other_case = attack_harness.minted("removal: another case")
    await harness.case_in(case_ref, "in_screening", ["caw", "clb"])
    await harness.case_in(other_case, "in_screening", ["clb"])
    coord = harness.client("coord")
    queued = harness.seal("coord", ["caw", "clb"], case_ref=case_ref)
    elsewhere = harness.seal("coord", ["clb"], case_ref=other_case)
    await coord.submit(queued)
    await coord.submit(elsewhere)
    size = await harness.store.tree_size()

    await coord.change_members(case_ref, remove=["clb"])

    def ids(inbox: dict[str, object]) -> list[str]:
        return [item["message_id"] for item in inbox["deliveries"]]  # type: ignore[attr-defined]

    queued_id = UnverifiedEnvelope.parse(queued).message_id
    elsewhere_id = UnverifiedEnvelope.parse(elsewhere).message_id
    assert ids(await harness.client("clb").inbox()) == [elsewhere_id.hex()]
    assert ids(await harness.client("caw").inbox()) == [queued_id.hex()]
    leaves = await harness.leaves_since(size)
    withdrawn = [leaf for leaf in leaves if isinstance(leaf, DeliveryWithdrawn)]
    assert len(withdrawn) == 1
    expected = (harness.clock(), queued_id, "clb", case_ref, "coord")
    leaf = withdrawn[0]
    assert (leaf.logged_at, leaf.message_id, leaf.recipient_id, leaf.case_ref, leaf.actor_id) == (
        expected
    )
