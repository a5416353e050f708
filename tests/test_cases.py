"""The case state machine: the one transition table, exhaustively."""

from __future__ import annotations

import itertools

import pytest

from livcr_exchange.cases import (
    INITIAL_STATE,
    TRANSITIONS,
    CaseState,
    ClosureReason,
    transition,
)
from livcr_exchange.errors import IllegalTransition, StateError

S = CaseState

# DESIGN.md §5, written out edge by edge so that a change to the table is a visible test change.
EXPECTED_EDGES = {
    (S.SIGNAAL_ONTVANGEN, S.IN_SCREENING),
    (S.IN_SCREENING, S.GEAGENDEERD),
    (S.GEAGENDEERD, S.BESPROKEN),
    (S.BESPROKEN, S.TRAJECT_LOPEND),
    (S.TRAJECT_LOPEND, S.GEAGENDEERD),
    (S.IN_SCREENING, S.AFGESLOTEN),
    (S.BESPROKEN, S.AFGESLOTEN),
    (S.TRAJECT_LOPEND, S.AFGESLOTEN),
    (S.AFGESLOTEN, S.IN_SCREENING),
    (S.AFGESLOTEN, S.GEWIST),
}


def test_table_is_exactly_the_design() -> None:
    edges = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert edges == EXPECTED_EDGES
    assert set(TRANSITIONS) == set(CaseState)


def test_initial_state() -> None:
    assert INITIAL_STATE is S.SIGNAAL_ONTVANGEN


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_pair_allowed_iff_in_table(current: CaseState, target: CaseState) -> None:
    reason = ClosureReason.ANDERE if target is S.AFGESLOTEN else None
    if (current, target) in EXPECTED_EDGES:
        assert transition(current, target, reason) is target
    else:
        with pytest.raises(IllegalTransition):
            transition(current, target, reason)


@pytest.mark.parametrize("current", [S.IN_SCREENING, S.BESPROKEN, S.TRAJECT_LOPEND])
def test_closing_needs_a_reason(current: CaseState) -> None:
    with pytest.raises(IllegalTransition, match="needs a reason"):
        transition(current, S.AFGESLOTEN)
    assert transition(current, S.AFGESLOTEN, ClosureReason.DOORVERWEZEN) is S.AFGESLOTEN


@pytest.mark.parametrize(("current", "target"), sorted(EXPECTED_EDGES))
def test_a_reason_only_when_closing(current: CaseState, target: CaseState) -> None:
    if target is S.AFGESLOTEN:
        return
    with pytest.raises(IllegalTransition, match="no reason"):
        transition(current, target, ClosureReason.OVERLEDEN)


def test_unknown_state_is_illegal() -> None:
    with pytest.raises(IllegalTransition, match="unknown case state"):
        transition("verzonnen", S.IN_SCREENING)  # type: ignore[arg-type]


def test_plain_strings_work_like_states() -> None:
    assert transition("besproken", "afgesloten", ClosureReason.ANDERE) is S.AFGESLOTEN  # type: ignore[arg-type]


def test_gewist_is_terminal_and_every_state_is_reachable() -> None:
    assert TRANSITIONS[S.GEWIST] == frozenset()
    seen, todo = {INITIAL_STATE}, [INITIAL_STATE]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(CaseState)


def test_error_code() -> None:
    with pytest.raises(StateError) as info:
        transition(S.GEWIST, S.IN_SCREENING)
    assert info.value.code == "illegal_transition"


def test_closure_reasons() -> None:
    assert {r.value for r in ClosureReason} >= {
        "geen_radicaliseringsrisico",
        "traject_afgerond",
        "doorverwezen",
        "betrokkene_verhuisd",
        "overleden",
        "andere",
    }
