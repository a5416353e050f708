"""The case state machine: states, closure reasons and the one transition table (spec §8.2)."""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from .errors import IllegalTransition, Malformed
from .hashing import RandomSource


class CaseState(enum.StrEnum):
    """Where a case stands. Only the coordinator moves a case (spec §8.2)."""

    SIGNAAL_ONTVANGEN = "signaal_ontvangen"  # a referral arrived
    IN_SCREENING = "in_screening"  # the coordinator asks who knows the person
    GEAGENDEERD = "geagendeerd"  # on the agenda of a cell meeting
    BESPROKEN = "besproken"  # discussed at a meeting
    TRAJECT_LOPEND = "traject_lopend"  # a case owner runs a socio-preventive trajectory
    AFGESLOTEN = "afgesloten"  # closed, with a reason; still within retention
    GEWIST = "gewist"  # retention over, data deleted; terminal


class ClosureReason(enum.StrEnum):
    """Why a case was closed; required exactly on transitions into ``afgesloten``."""

    GEEN_RADICALISERINGSRISICO = "geen_radicaliseringsrisico"  # screening found no risk
    TRAJECT_AFGEROND = "traject_afgerond"  # the trajectory reached its goals
    DOORVERWEZEN = "doorverwezen"  # handed to regular care or another body
    BETROKKENE_VERHUISD = "betrokkene_verhuisd"  # moved out of the cell's territory
    BETROKKENE_WEIGERT = "betrokkene_weigert"  # the person declines (participation is voluntary)
    OVERLEDEN = "overleden"
    ANDERE = "andere"


INITIAL_STATE: Final = CaseState.SIGNAAL_ONTVANGEN

_S = CaseState

# The one transition table (spec §8.2); every pair not listed here is an illegal transition.
# Reopening (afgesloten -> in_screening) is only possible while the case is within retention;
# the caller that holds the retention clock decides, the table only says it is a legal move.
TRANSITIONS: Final[Mapping[CaseState, frozenset[CaseState]]] = MappingProxyType(
    {
        _S.SIGNAAL_ONTVANGEN: frozenset({_S.IN_SCREENING}),
        _S.IN_SCREENING: frozenset({_S.GEAGENDEERD, _S.AFGESLOTEN}),
        _S.GEAGENDEERD: frozenset({_S.BESPROKEN}),
        _S.BESPROKEN: frozenset({_S.TRAJECT_LOPEND, _S.AFGESLOTEN}),
        _S.TRAJECT_LOPEND: frozenset({_S.GEAGENDEERD, _S.AFGESLOTEN}),
        _S.AFGESLOTEN: frozenset({_S.IN_SCREENING, _S.GEWIST}),
        _S.GEWIST: frozenset(),
    }
)


def transition(
    current: CaseState, target: CaseState, reason: ClosureReason | None = None
) -> CaseState:
    """Return ``target`` if the table allows ``current -> target`` with this reason.

    A reason is required when (and only when) the target is ``afgesloten``.

    Raises:
        IllegalTransition: an unknown state, a pair not in the table, a closure without a
            reason, or a reason on a transition that does not close the case.
    """
    allowed = TRANSITIONS.get(current)
    if allowed is None:
        raise IllegalTransition(f"unknown case state {current!r}")
    if target not in allowed:
        raise IllegalTransition(f"no transition from {current} to {target}")
    closing = target == CaseState.AFGESLOTEN
    if closing and reason is None:
        raise IllegalTransition(f"closing a case ({current} -> {target}) needs a reason")
    if not closing and reason is not None:
        raise IllegalTransition(f"{current} -> {target} does not close the case; no reason")
    return CaseState(target)


# Case references (spec §8.3): "case-" and 26 lowercase base32 letters (RFC 4648 alphabet, no
# padding) spelling 16 random bytes, so that nobody who was not told a reference can guess one.
CASE_REF_PREFIX: Final = "case-"
CASE_REF_RANDOM_BYTES: Final = 16
_CASE_REF_LETTERS: Final = 26


def mint_case_ref(random: RandomSource) -> str:
    """A new case reference from CASE_REF_RANDOM_BYTES of ``random``."""
    encoded = base64.b32encode(random(CASE_REF_RANDOM_BYTES)).decode("ascii")
    return CASE_REF_PREFIX + encoded.rstrip("=").lower()


def check_case_ref(text: str) -> str:
    """``text`` if it is a case reference in the minted form; returns it unchanged.

    Raises:
        Malformed: any other text (a guessable reference such as ``case-0001`` among them).
    """
    letters = text.removeprefix(CASE_REF_PREFIX)
    if len(letters) == _CASE_REF_LETTERS and text.startswith(CASE_REF_PREFIX):
        try:
            raw = base64.b32decode(letters.upper() + "======", casefold=False)
        except binascii.Error:
            raw = b""
        if len(raw) == CASE_REF_RANDOM_BYTES and mint_case_ref(lambda _: raw) == text:
            return text
    raise Malformed(f"case reference {text[:80]!r} is not {CASE_REF_PREFIX} + 26 base32 letters")
