"""Who may read the data of which log leaf (spec §10.2).

Every participant may check the whole tree, so every leaf *hash* is served to all. A leaf's data
says who exchanged what about which case: metadata that a participant sees only where it has a
part in it (DESIGN §2: a gateway sees the messages addressed to it, not who else talks about a
case). The roles that oversee the cell see all of it.
"""

from __future__ import annotations

from livcr_exchange.audit.leaves import (
    CaseMembership,
    CaseTransition,
    DeliveryDropped,
    DeliveryReceipt,
    DeliveryWithdrawn,
    DirectoryChange,
    EnvelopeAccepted,
    Leaf,
    MeetingRecorded,
    Refusal,
)
from livcr_exchange.roles import Role

# The coordinator runs the cell's case registry; the DPO and the supervisor audit it.
SEES_EVERY_LEAF = frozenset({Role.COORDINATOR, Role.DPO, Role.TOEZICHT})


def named_participants(leaf: Leaf) -> frozenset[str]:
    """The participants a leaf names: they took part in what it records."""
    named: tuple[str, ...] = ()
    match leaf:
        case EnvelopeAccepted():
            named = (leaf.sender_id, *leaf.recipients)
        case DeliveryReceipt() | DeliveryDropped():
            named = (leaf.recipient_id,)
        case CaseMembership():
            named = (leaf.actor_id, *leaf.added, *leaf.removed)
        case MeetingRecorded():
            named = (leaf.actor_id, *leaf.present)
        case CaseTransition() | Refusal():
            named = (leaf.actor_id,)
        case DirectoryChange():
            named = (leaf.participant_id,)
        case DeliveryWithdrawn():
            named = (leaf.recipient_id, leaf.actor_id)
    return frozenset(named)


def case_of(leaf: Leaf) -> str | None:
    """The case a leaf is about, if any."""
    match leaf:
        case (
            EnvelopeAccepted()
            | CaseMembership()
            | MeetingRecorded()
            | CaseTransition()
            | DeliveryWithdrawn()
        ):
            return leaf.case_ref
    return None


def leaf_is_readable(leaf: Leaf, participant_id: str, case_members: frozenset[str]) -> bool:
    """Whether ``participant_id`` (not an overseeing role) may read ``leaf``'s data.

    ``case_members`` are the current members of the leaf's case (empty without one). Directory
    changes are readable by all: the directory itself is served to every participant.
    """
    if isinstance(leaf, DirectoryChange):
        return True
    return participant_id in named_participants(leaf) or participant_id in case_members
