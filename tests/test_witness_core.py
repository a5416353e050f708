"""Witness formats and decisions in the pure core (spec §10.6-§10.8)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from witnessproc import SigningLog

from livcr_exchange.audit.cosignature import (
    WitnessKey,
    cosign,
    verify_cosigned_checkpoint,
    witness_coverage,
)
from livcr_exchange.audit.merkle import root_hash
from livcr_exchange.audit.witness import (
    AddCheckpoint,
    Cosigned,
    decide,
    encode_size,
    merge_signatures,
    parse_add_checkpoint,
    parse_cosignature_lines,
    parse_size,
)
from livcr_exchange.errors import LivcrError, Malformed, QuorumNotMet
from livcr_exchange.keys import IdentityKey
from livcr_exchange.witness_policy import WitnessPolicy

NOW = 1_900_000_000


def witness(name: str) -> tuple[WitnessKey, IdentityKey]:
    key = IdentityKey.from_seed(os.urandom(32))
    return WitnessKey(name, key.public.raw), key


def test_vkey_round_trip_and_c2sp_key_id() -> None:
    key, _ = witness("witness.example/w1")
    assert WitnessKey.from_vkey(key.vkey()) == key
    assert key.vkey().split("+")[1] == key.key_id.hex()
    with pytest.raises(Malformed):
        WitnessKey("has space", key.public)


def test_add_checkpoint_round_trip_and_size_body() -> None:
    log = SigningLog()
    log.grow(9)
    request = AddCheckpoint(4, (log.tree.leaf(0), log.tree.leaf(1)), log.note(9))
    assert parse_add_checkpoint(request.encode()) == request
    assert parse_size(encode_size(123)) == 123
    with pytest.raises(Malformed):
        parse_size(b"0123\n")
    with pytest.raises(Malformed):
        AddCheckpoint(0, (b"\x00" * 32,) * 64, log.note(9)).encode()


def test_merged_note_counts_each_witness_once_and_quorum() -> None:
    log = SigningLog()
    log.grow(5)
    (a, a_key), (b, b_key) = witness("w/a"), witness("w/b")
    body = log.note(5).split(b"\n\n")[0] + b"\n"
    lines = [cosign(body, "w/a", a_key, NOW), cosign(body, "w/b", b_key, NOW + 1)]
    note = merge_signatures(log.note(5), parse_cosignature_lines(b"".join(lines)))
    assert merge_signatures(note, lines) == note  # nothing twice
    coverage = verify_cosigned_checkpoint(note, log.origin, log.key.public.raw, [a, b], 2, now=NOW)
    assert sorted(c.witness for c in coverage.valid) == ["w/a", "w/b"]
    with pytest.raises(QuorumNotMet):
        verify_cosigned_checkpoint(
            note, log.origin, log.key.public.raw, [a, witness("w/c")[0]], 2, now=NOW
        )


def test_coverage_counts_valid_lines_and_lists_bad_ones() -> None:
    log = SigningLog()
    log.grow(3)
    (a, a_key), (b, _) = witness("w/a"), witness("w/b")
    body = log.note(3).split(b"\n\n")[0] + b"\n"
    forged = cosign(body, "w/b", a_key, NOW)  # b's name, a's key: key id differs, ignored
    future = cosign(body, "w/a", a_key, NOW + 3600)
    note = log.note(3) + forged + future
    coverage = witness_coverage(note, log.origin, log.key.public.raw, [a, b], now=NOW)
    assert coverage.count() == 0
    assert coverage.invalid == ("w/a",)
    policy = WitnessPolicy("cell", 1, 1, (a, b))
    good = note + cosign(body, "w/a", a_key, NOW)
    counted = policy.coverage(good, log.origin, log.key.public.raw, now=NOW)
    assert [c.witness for c in counted.valid] == ["w/a"]
    assert policy.is_met(counted)
    assert not WitnessPolicy("cell", 1, 0, (a, b)).is_met(counted)


def test_policy_round_trip() -> None:
    root = IdentityKey.from_seed(os.urandom(32))
    witnesses = tuple(sorted((witness(n)[0] for n in ("w/b", "w/a")), key=lambda w: w.name))
    policy = WitnessPolicy("cell", 2, 1, witnesses)
    assert WitnessPolicy.open(policy.sign(root), root.public, "cell") == policy
    with pytest.raises(Malformed):
        WitnessPolicy("cell", 2, 1, tuple(reversed(witnesses)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.booleans()), max_size=12))
def test_a_witness_only_ever_moves_to_consistent_extensions(
    steps: list[tuple[int, int, bool]],
) -> None:
    """Whatever is submitted, every cosigned checkpoint extends the previous one."""
    log = SigningLog()
    log.grow(12)
    fork = log.fork(3, 9)
    last: Cosigned | None = None
    for old, new, forked in steps:
        source = fork if forked else log
        try:
            checkpoint = decide(parse_add_checkpoint(source.request(old, new)), log.log_key, last)
        except LivcrError:
            continue
        if last is not None:
            assert checkpoint.size >= last.size  # never a rollback
        # The two histories agree up to leaf 3: past it, once a side is cosigned, a witness
        # that then cosigned the other side would have cosigned a fork.
        if last is not None and last.size > 3 and checkpoint.size > 3:
            previous_from_fork = last.root == root_hash(fork.tree, last.size)
            now_from_fork = checkpoint.root == root_hash(fork.tree, checkpoint.size)
            assert previous_from_fork == now_from_fork
        last = Cosigned(checkpoint.size, checkpoint.root)
