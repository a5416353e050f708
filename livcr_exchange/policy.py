"""Purpose policy: whether a message may go from its sender to its recipients, as a value (§7.3).

The hub calls ``evaluate_header`` on what it can see; a gateway calls ``evaluate_message``, which
also checks the opened body. A denial is a ``Decision`` to log and audit, not an exception;
``Decision.raise_for_denial`` turns it into one where a caller wants that.

Checks, in this order; the first that fails decides, with the code in brackets:

1. The purpose is in the catalogue [``purpose_not_allowed``].
2. The sender's directory entry lists the purpose [``purpose_not_allowed``].
3. One of the sender's effective roles is a sender role of the purpose [``purpose_not_allowed``].
4. The case's state allows the purpose; a case the hub does not know has no state, which only
   ``aanmelding`` allows [``case_state_forbids``].
5. The sender has the purpose's sender tie to the case [``purpose_not_allowed``].
6. There is at least one recipient, none is listed twice, and a purpose whose recipients must
   have been present names a meeting [``recipient_not_allowed``]. Then, for each recipient in
   the header's order: (a) it is not the sender, (b) it is enrolled, (c) its directory entry
   lists the purpose, (d) one of its effective roles is a recipient role of the purpose, (e) it
   has the purpose's recipient tie to the case [``recipient_not_allowed``].
7. A purpose that needs co-signatures names a meeting with recorded attendance, and the
   co-signers whose signatures verified are exactly the participants recorded present there;
   the sender included when it was present, because its envelope signature is not a
   co-signature. Any other purpose carries no co-signatures [``cosignature_invalid``].

``evaluate_before_sealing`` (the sender's gateway, which knows the directory but not the case)
runs steps 1-3 and 6 with what the directory alone tells: a participant's *possible* roles
(``possible_roles``: a ``deelnemer`` may be the owner of the case) and no ties. A directory entry
lists the purposes its holder may send *and* those it may only receive; the roles tell them
apart. What it denies, the hub denies too (with this code, unless step 4 or 5 fails first).

``evaluate_message`` (the gateway, after opening) then checks:

8. The body decodes under the body schema, tagged with the header's purpose
   [``body_schema_violation``].
9. A ``case_ref`` or ``meeting_ref`` in the body equals the header's [``body_schema_violation``].

Effective roles: the directory role, plus ``casusverantwoordelijke`` for the ``deelnemer`` that
the case names as owner. Ties: ``member`` is a listed member of the case, its owner, or any
coordinator (the coordinator runs every case of the cell); ``present`` is a member recorded
present at the message's meeting; ``referrer`` is the case's referrer; ``any`` needs nothing.
Ties are not checked on a case the hub does not know (step 4 lets only ``aanmelding`` through).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from .cases import CaseState
from .errors import (
    AttachmentNotAllowed,
    BodySchemaViolation,
    CaseStateForbids,
    CosignatureInvalid,
    LivcrError,
    PurposeNotAllowed,
    RecipientNotAllowed,
    error_codes,
)
from .purposes import CATALOGUE, CaseTie, Purpose, decode_body
from .roles import Role
from .statements import DirectoryEntry


@dataclass(frozen=True)
class Decision:
    """The outcome of a policy evaluation: allowed, or denied with a stable code and a reason.

    ``reason`` is precise and meant for our own logs and the audit record; it names participant
    ids and references, never body content.
    """

    allowed: bool
    code: str | None
    reason: str
    purpose: str
    sender_id: str

    def __post_init__(self) -> None:
        if self.allowed != (self.code is None):
            raise ValueError("a decision has a code exactly when it denies")
        if self.code is not None and self.code not in error_codes():
            raise ValueError(f"unknown error code {self.code!r}")

    @classmethod
    def allow(cls, *, purpose: str, sender_id: str, reason: str = "allowed") -> Decision:
        return cls(allowed=True, code=None, reason=reason, purpose=purpose, sender_id=sender_id)

    @classmethod
    def deny(
        cls, error: type[LivcrError], reason: str, *, purpose: str, sender_id: str
    ) -> Decision:
        return cls(
            allowed=False, code=error.code, reason=reason, purpose=purpose, sender_id=sender_id
        )

    def raise_for_denial(self) -> None:
        """Do nothing if allowed.

        Raises:
            LivcrError: the subclass whose code the denial carries (a PolicyError, or
                CosignatureInvalid), with the reason as its message.
        """
        if self.code is not None:
            raise error_codes()[self.code](self.reason)


@dataclass(frozen=True)
class Participant:
    """What the signed directory says about a participant."""

    participant_id: str
    role: Role
    allowed_purposes: frozenset[str]


def participant_of(entry: DirectoryEntry) -> Participant:
    """What policy needs of a directory entry."""
    return Participant(entry.participant_id, entry.role, entry.allowed_purposes)


@dataclass(frozen=True)
class CaseView:
    """What the hub's case registry knows about a case. No personal data, only ids."""

    case_ref: str
    state: CaseState
    members: frozenset[str]
    owner: str | None = None
    referrer: str | None = None
    # meeting_ref -> participant ids recorded present at that meeting.
    present_at: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class MessageFacts:
    """What the header of one message says, plus the co-signers that verified."""

    sender_id: str
    purpose: str
    case_ref: str
    recipients: tuple[str, ...]
    meeting_ref: str | None = None
    # Ids whose co-signature already verified cryptographically (spec §6.6 step 8).
    cosigners: frozenset[str] = frozenset()


_Denial: TypeAlias = tuple[type[LivcrError], str]


@dataclass(frozen=True)
class _Request:
    purpose: Purpose
    facts: MessageFacts
    sender: Participant
    recipients: Mapping[str, Participant]
    case: CaseView | None
    sealing: bool = False  # before sealing: the case is unknown, not absent

    def roles_of(self, participant: Participant) -> frozenset[Role]:
        if self.sealing:
            return possible_roles(participant)
        return effective_roles(participant, self.case)


def effective_roles(participant: Participant, case: CaseView | None) -> frozenset[Role]:
    """The directory role, plus ``casusverantwoordelijke`` for the deelnemer owning ``case``."""
    owns = case is not None and case.owner == participant.participant_id
    if owns and participant.role == Role.DEELNEMER:
        return frozenset({participant.role, Role.CASUSVERANTWOORDELIJKE})
    return frozenset({participant.role})


def possible_roles(participant: Participant) -> frozenset[Role]:
    """The effective roles ``participant`` can hold on some case: a deelnemer may own one."""
    return roles_on_some_case(participant.role)


def roles_on_some_case(role: Role) -> frozenset[Role]:
    """The effective roles a holder of directory ``role`` can have on some case."""
    if role == Role.DEELNEMER:
        return frozenset({role, Role.CASUSVERANTWOORDELIJKE})
    return frozenset({role})


def is_member(participant: Participant, case: CaseView) -> bool:
    """Listed on the case, its owner, or a coordinator (who runs every case of the cell)."""
    pid = participant.participant_id
    return participant.role == Role.COORDINATOR or pid in case.members or pid == case.owner


def has_tie(
    tie: CaseTie, participant: Participant, case: CaseView | None, meeting_ref: str | None
) -> bool:
    """Whether ``participant`` relates to ``case`` as ``tie`` requires."""
    if tie == CaseTie.ANY or case is None:
        return True  # an unknown case: only aanmelding gets here, and it has nobody to tie to
    if tie == CaseTie.REFERRER:
        return participant.participant_id == case.referrer
    if not is_member(participant, case):
        return False
    if tie == CaseTie.PRESENT:
        present = case.present_at.get(meeting_ref, frozenset()) if meeting_ref else frozenset()
        return participant.participant_id in present
    return True


def _tie_text(tie: CaseTie, request: _Request) -> str:
    case_ref, meeting_ref = request.facts.case_ref, request.facts.meeting_ref
    texts = {
        CaseTie.ANY: "anything",
        CaseTie.MEMBER: f"a member of case {case_ref}",
        CaseTie.PRESENT: f"a member recorded present at meeting {meeting_ref} of case {case_ref}",
        CaseTie.REFERRER: f"the referrer of case {case_ref}",
    }
    return texts[tie]


def _roles_text(roles: frozenset[Role]) -> str:
    return ", ".join(sorted(roles))


# Steps 2 and 3.
def _sender_may_use_purpose(request: _Request) -> _Denial | None:
    sender, tag = request.sender, request.purpose.tag
    if tag not in sender.allowed_purposes:
        return PurposeNotAllowed, f"directory entry of {sender.participant_id} does not list {tag}"
    roles = request.roles_of(sender)
    if not roles & request.purpose.sender_roles:
        return PurposeNotAllowed, (
            f"{sender.participant_id} ({_roles_text(roles)}) may not send {tag}; "
            f"senders: {_roles_text(request.purpose.sender_roles)}"
        )
    return None


# Step 4.
def _state_allows(request: _Request) -> _Denial | None:
    state = request.case.state if request.case is not None else None
    if state in request.purpose.case_states:
        return None
    where = f"state {state}" if state is not None else "a case the hub does not know"
    return CaseStateForbids, f"{request.purpose.tag} is not allowed on {where}"


# Step 5.
def _sender_tie(request: _Request) -> _Denial | None:
    tie, sender = request.purpose.sender_tie, request.sender
    if has_tie(tie, sender, request.case, request.facts.meeting_ref):
        return None
    return PurposeNotAllowed, (
        f"{sender.participant_id} may send {request.purpose.tag} only as {_tie_text(tie, request)}"
    )


# Step 6.
def _recipients_allowed(request: _Request) -> _Denial | None:
    listed, purpose = request.facts.recipients, request.purpose
    if not listed:
        return RecipientNotAllowed, "no recipients"
    if len(set(listed)) != len(listed):
        return RecipientNotAllowed, "a recipient is listed twice"
    if purpose.recipient_tie == CaseTie.PRESENT and request.facts.meeting_ref is None:
        return RecipientNotAllowed, f"{purpose.tag} names no meeting to check presence against"
    for recipient_id in listed:
        denial = _recipient_allowed(request, recipient_id)
        if denial is not None:
            return RecipientNotAllowed, denial
    return None


def _recipient_allowed(request: _Request, recipient_id: str) -> str | None:
    purpose = request.purpose
    if recipient_id == request.facts.sender_id:
        return f"{recipient_id} is the sender"
    recipient = request.recipients.get(recipient_id)
    if recipient is None:
        return f"{recipient_id} is not enrolled"
    if purpose.tag not in recipient.allowed_purposes:
        return f"directory entry of {recipient_id} does not list {purpose.tag}"
    roles = request.roles_of(recipient)
    if not roles & purpose.recipient_roles:
        return (
            f"{recipient_id} ({_roles_text(roles)}) may not receive {purpose.tag}; "
            f"recipients: {_roles_text(purpose.recipient_roles)}"
        )
    # Ties need the case, which only the hub knows.
    tie = purpose.recipient_tie
    if not request.sealing and not has_tie(tie, recipient, request.case, request.facts.meeting_ref):
        return f"{recipient_id} is not {_tie_text(tie, request)}"
    return None


# Step 7.
def _cosigners_complete(request: _Request) -> _Denial | None:
    facts, tag = request.facts, request.purpose.tag
    if not request.purpose.needs_cosignatures:
        return (CosignatureInvalid, f"{tag} takes no co-signatures") if facts.cosigners else None
    if facts.meeting_ref is None:
        return CosignatureInvalid, f"{tag} needs co-signatures for a meeting; none named"
    case = request.case
    present = case.present_at.get(facts.meeting_ref) if case is not None else None
    if not present:
        return CosignatureInvalid, f"no attendance recorded for meeting {facts.meeting_ref}"
    missing = sorted(present - facts.cosigners)
    if missing:
        return CosignatureInvalid, f"{tag} lacks co-signatures of {', '.join(missing)}"
    extra = sorted(facts.cosigners - present)
    if extra:
        return CosignatureInvalid, (
            f"co-signers {', '.join(extra)} are not recorded present at {facts.meeting_ref}"
        )
    return None


_HEADER_CHECKS: tuple[Callable[[_Request], _Denial | None], ...] = (
    _sender_may_use_purpose,
    _state_allows,
    _sender_tie,
    _recipients_allowed,
    _cosigners_complete,
)


def _check_inputs(facts: MessageFacts, sender: Participant, case: CaseView | None) -> None:
    if sender.participant_id != facts.sender_id:
        raise ValueError(f"sender {sender.participant_id} is not {facts.sender_id}")
    if case is not None and case.case_ref != facts.case_ref:
        raise ValueError(f"case {case.case_ref} is not {facts.case_ref}")


def evaluate_header(
    facts: MessageFacts,
    sender: Participant,
    recipients: Mapping[str, Participant],
    case: CaseView | None,
) -> Decision:
    """The hub's decision on what the header says: steps 1-7 of the module docstring.

    ``recipients`` maps participant ids to their directory entries; a listed recipient missing
    from it is not enrolled. ``case`` is None when the hub does not know ``facts.case_ref``.

    Raises:
        ValueError: ``sender`` or ``case`` is not the one ``facts`` names (a caller's bug).
    """
    _check_inputs(facts, sender, case)
    purpose = CATALOGUE.get(facts.purpose)
    if purpose is None:
        return _deny(facts, PurposeNotAllowed, f"unknown purpose {facts.purpose!r}")
    request = _Request(purpose, facts, sender, recipients, case)
    for check in _HEADER_CHECKS:
        denial = check(request)
        if denial is not None:
            return _deny(facts, *denial)
    return Decision.allow(purpose=facts.purpose, sender_id=facts.sender_id)


def evaluate_before_sealing(
    facts: MessageFacts, sender: Participant, recipients: Mapping[str, Participant]
) -> Decision:
    """A sender's gateway's decision before it seals, from its verified directory alone.

    Steps 1-3 and 6 of the module docstring, with each participant's possible roles and without
    case ties; ``facts.case_ref`` names a case the gateway cannot see. ``recipients`` maps
    participant ids to their directory entries; a listed recipient missing from it is not
    enrolled.

    Raises:
        ValueError: ``sender`` is not the one ``facts`` names (a caller's bug).
    """
    _check_inputs(facts, sender, None)
    purpose = CATALOGUE.get(facts.purpose)
    if purpose is None:
        return _deny(facts, PurposeNotAllowed, f"unknown purpose {facts.purpose!r}")
    request = _Request(purpose, facts, sender, recipients, None, sealing=True)
    for check in (_sender_may_use_purpose, _recipients_allowed):
        denial = check(request)
        if denial is not None:
            return _deny(facts, *denial)
    return Decision.allow(purpose=facts.purpose, sender_id=facts.sender_id)


def evaluate_message(
    facts: MessageFacts,
    sender: Participant,
    recipients: Mapping[str, Participant],
    case: CaseView | None,
    body: bytes,
) -> Decision:
    """A gateway's decision on an opened message: steps 1-9 of the module docstring.

    Raises:
        ValueError: ``sender`` or ``case`` is not the one ``facts`` names (a caller's bug).
    """
    decision = evaluate_header(facts, sender, recipients, case)
    return decision if not decision.allowed else evaluate_body(facts, body, decision)


def evaluate_with_body(
    facts: MessageFacts, sender: Participant, recipients: Mapping[str, Participant], body: bytes
) -> Decision:
    """What a gateway that knows the directory but not the case decides on a message and its
    body, before sealing or after opening: steps 8-9 first (a broken body is refused as such,
    whoever sends it), then steps 1-3 and 6 as ``evaluate_before_sealing``.

    Raises:
        ValueError: ``sender`` is not the one ``facts`` names (a caller's bug).
    """
    decision = evaluate_before_sealing(facts, sender, recipients)
    body_decision = evaluate_body(facts, body, decision)
    return body_decision if decision.allowed or not body_decision.allowed else decision


def evaluate_body(facts: MessageFacts, body: bytes, allowed: Decision) -> Decision:
    """Steps 8-9: the body decodes under its purpose's schema and names the header's case and
    meeting; ``allowed`` when it does."""
    try:
        decoded = decode_body(facts.purpose, body)
    except BodySchemaViolation as exc:
        return _deny(facts, BodySchemaViolation, str(exc))
    except AttachmentNotAllowed as exc:  # documents on a purpose that carries none (§6.7)
        return _deny(facts, AttachmentNotAllowed, str(exc))
    # Step 9: a body must not speak about another case or meeting than its signed header.
    body_case = getattr(decoded, "case_ref", None)
    if body_case is not None and body_case != facts.case_ref:
        return _deny(facts, BodySchemaViolation, f"body names case {body_case}")
    body_meeting = getattr(decoded, "meeting_ref", None)
    if None not in (body_meeting, facts.meeting_ref) and body_meeting != facts.meeting_ref:
        return _deny(facts, BodySchemaViolation, f"body names meeting {body_meeting}")
    return allowed


def _deny(facts: MessageFacts, error: type[LivcrError], reason: str) -> Decision:
    return Decision.deny(error, reason, purpose=facts.purpose, sender_id=facts.sender_id)
