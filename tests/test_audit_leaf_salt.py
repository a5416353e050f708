"""A withheld or purged leaf cannot be recovered from its public hash (spec §10.4, §10.5).

Every participant gets every leaf hash. The attacker here is a removed member: it knows the case
reference, every participant id, the states and codes, and the neighbouring leaves in full (their
times pin the withheld leaf's time to a window, their salts are worth a guess). It tries every
plausible leaf. Against the leaves as v2 builds them it finds nothing; against the same leaves
built the v1 way, without a salt, the same search finds each one, which shows the search works.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import replace

import nacl.utils
import pytest

from livcr_exchange.audit.leaves import (
    LEAF_SALT_BYTES,
    CaseMembership,
    CaseTransition,
    Leaf,
    MeetingRecorded,
    Refusal,
    decode_leaf,
)
from livcr_exchange.audit.merkle import leaf_hash
from livcr_exchange.cases import INITIAL_STATE, TRANSITIONS, CaseState, ClosureReason
from livcr_exchange.errors import LivcrError

CASE = "case-7k2m9q"
PARTICIPANTS = (
    "caw",
    "cgg",
    "clb",
    "coord",
    "dpo",
    "io-politie",
    "jeugdhulp",
    "justitiehuis",
    "ocmw",
    "school",
    "vdab",
    "voorzitter",
)
MEMBERS = ("caw", "clb", "coord", "io-politie", "ocmw", "voorzitter")
BEFORE, AFTER = 1_893_456_000, 1_893_456_000 + 120  # the neighbours' log times
# Every move the state table allows, and the opening of a case (spec §8.2).
MOVES = (
    ("none", INITIAL_STATE.value),
    *((old.value, new.value) for old, targets in TRANSITIONS.items() for new in targets),
)
REASONS = tuple(r.value for r in ClosureReason)
ACTIONS = ("submit", "acknowledge", "open_case", "change_members", "record_meeting", "move_case")


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


ERROR_CODES = tuple(sorted({str(getattr(c, "code", "")) for c in _subclasses(LivcrError)}))
SALT = nacl.utils.random(LEAF_SALT_BYTES)  # the hub's fresh draw for the withheld leaf
NEIGHBOUR_SALTS = (nacl.utils.random(LEAF_SALT_BYTES), nacl.utils.random(LEAF_SALT_BYTES))
GUESSED_SALTS = (bytes(LEAF_SALT_BYTES), *NEIGHBOUR_SALTS)


def unsalted(data: bytes) -> bytes:
    """The v1 construction of the same leaf: type, log time, fields; no salt."""
    return data[:9] + data[9 + LEAF_SALT_BYTES :]


def subsets(items: Iterable[str], most: int) -> Iterator[tuple[str, ...]]:
    pool = tuple(items)
    for size in range(most + 1):
        yield from itertools.combinations(pool, size)


def plausible(kind: type[Leaf]) -> Iterator[Leaf]:
    """Every leaf of ``kind`` an attacker would try, at log time 0 and with a zero salt."""
    zero = bytes(LEAF_SALT_BYTES)
    if kind is CaseTransition:
        for actor, (old, new) in itertools.product(PARTICIPANTS, MOVES):
            for reason in REASONS if new == CaseState.AFGESLOTEN.value else ("none",):
                yield CaseTransition(0, zero, CASE, actor, old, new, reason)
    elif kind is CaseMembership:
        for added in subsets(PARTICIPANTS, 2):
            for removed in subsets((p for p in PARTICIPANTS if p not in added), 1):
                yield CaseMembership(0, zero, CASE, "coord", added, removed)
    elif kind is MeetingRecorded:
        for present in subsets(MEMBERS, len(MEMBERS)):
            yield MeetingRecorded(0, zero, CASE, "meeting-2030-01", "coord", present)
    elif kind is Refusal:
        for actor, action, code in itertools.product(PARTICIPANTS, ACTIONS, ERROR_CODES):
            yield Refusal(0, zero, actor, action, code, bytes(16))


def search(target: bytes, kind: type[Leaf], *, salted: bool) -> Leaf | None:
    """Try every plausible leaf at every time between the neighbours (and, salted, every salt
    worth a guess); return the one whose leaf hash is ``target``."""
    salts = GUESSED_SALTS if salted else (bytes(LEAF_SALT_BYTES),)
    for candidate in plausible(kind):
        encoded = candidate.encode()
        for salt in salts:
            head, tail = encoded[:1], salt + encoded[9 + LEAF_SALT_BYTES :]
            for logged_at in range(BEFORE, AFTER + 1):
                data = head + logged_at.to_bytes(8, "big") + tail
                if not salted:
                    data = unsalted(data)
                if leaf_hash(data) == target:
                    return replace(candidate, logged_at=logged_at, salt=salt)
    return None


WITHHELD: tuple[Leaf, ...] = (
    CaseTransition(BEFORE + 73, SALT, CASE, "coord", "besproken", "afgesloten", "doorverwezen"),
    CaseMembership(BEFORE + 11, SALT, CASE, "coord", ("cgg", "school"), ("caw",)),
    MeetingRecorded(BEFORE + 98, SALT, CASE, "meeting-2030-01", "coord", ("clb", "coord", "ocmw")),
    Refusal(BEFORE + 42, SALT, "caw", "submit", "recipient_not_allowed", bytes(16)),
)


@pytest.mark.parametrize("leaf", WITHHELD, ids=lambda leaf: type(leaf).__name__)
def test_a_withheld_leaf_is_not_recovered_by_exhaustive_search(leaf: Leaf) -> None:
    """The search covers the leaf's true fields and time, and still finds nothing: the salt."""
    assert decode_leaf(leaf.encode()) == leaf  # the salt is inside the hashed bytes
    assert search(leaf_hash(leaf.encode()), type(leaf), salted=True) is None


@pytest.mark.parametrize("leaf", WITHHELD, ids=lambda leaf: type(leaf).__name__)
def test_the_same_search_recovers_an_unsalted_v1_leaf(leaf: Leaf) -> None:
    """The control: built the v1 way, each leaf falls to the very same search."""
    found = search(leaf_hash(unsalted(leaf.encode())), type(leaf), salted=False)
    assert found is not None
    assert replace(found, salt=SALT) == leaf
