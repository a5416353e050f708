"""Passphrase-protected secret-key files."""

from __future__ import annotations

import time

import pytest

from livcr_exchange.constants import (
    MAX_SECRET_KEY_MEMLIMIT,
    MAX_SECRET_KEY_OPSLIMIT,
    MIN_SECRET_KEY_MEMLIMIT,
    MIN_SECRET_KEY_OPSLIMIT,
)
from livcr_exchange.errors import Malformed, UnsupportedVersion, WrongPassphrase
from livcr_exchange.keyfile import (
    KEYFILE_MAGIC,
    KEYFILE_VERSION,
    SecretBundle,
    costs_in_bounds,
    lock,
    lock_from_parts,
    unlock,
)
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite

CHEAP = {"opslimit": 1, "memlimit": 8192}


def bundle() -> SecretBundle:
    return SecretBundle(
        "caw",
        IdentityKey.from_seed(bytes(range(32))),
        (PrekeySecret(Suite.X25519, bytes(32)), PrekeySecret(Suite.XWING, bytes(range(32)))),
    )


def counter_random(size: int) -> bytes:
    return bytes(size)


def test_round_trip_keeps_every_key() -> None:
    original = bundle()
    opened = unlock(lock(original, b"pass", counter_random, **CHEAP), b"pass")
    assert opened.participant_id == "caw"
    assert opened.identity.public == original.identity.public
    assert [p.key_id for p in opened.prekeys] == [p.key_id for p in original.prekeys]


def test_wrong_passphrase_is_refused() -> None:
    with pytest.raises(WrongPassphrase) as caught:
        unlock(lock(bundle(), b"pass", counter_random, **CHEAP), b"Pass")
    assert caught.value.code == "wrong_passphrase"


def test_cost_parameters_are_authenticated() -> None:
    locked = bytearray(lock(bundle(), b"pass", counter_random, opslimit=2, memlimit=8192))
    locked[len(KEYFILE_MAGIC) + 1 : len(KEYFILE_MAGIC) + 5] = (1).to_bytes(4, "big")
    with pytest.raises(WrongPassphrase):
        unlock(bytes(locked), b"pass")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda data: b"NOTAKEY!" + data[8:],
        lambda data: data[:9] + (10**6).to_bytes(4, "big") + data[13:],
        lambda data: data[:20],
        lambda data: data[:53],  # no ciphertext at all
        lambda data: data[: 53 + 15],  # shorter than the tag: libsodium's binding raised ValueError
        lambda data: data[: 53 + 16],  # a tag and nothing to decrypt
    ],
    ids=["magic", "cost_out_of_bounds", "truncated", "no_ciphertext", "short_tag", "tag_only"],
)
def test_malformed_files_are_named(mutate: object) -> None:
    locked = lock_from_parts(bundle(), b"pass", salt=bytes(16), nonce=bytes(24), **CHEAP)
    with pytest.raises(Malformed):
        unlock(mutate(locked), b"pass")  # type: ignore[operator]


def test_repr_hides_secrets() -> None:
    text = repr(bundle()) + repr(bundle().identity) + repr(bundle().prekeys)
    assert bytes(range(32)).hex() not in text
    assert "hidden" in text


@pytest.mark.parametrize("version", [0, 1, 3, 255])
def test_other_versions_are_refused_with_what_to_do(version: int) -> None:
    locked = lock_from_parts(bundle(), b"pass", salt=bytes(16), nonce=bytes(24), **CHEAP)
    assert locked[8] == KEYFILE_VERSION == 2
    with pytest.raises(UnsupportedVersion, match="create new keys"):
        unlock(locked[:8] + bytes([version]) + locked[9:], b"pass")


def hostile_file(opslimit: int, memlimit: int) -> bytes:
    """73 bytes: a header with the given cost and a bare 16-byte tag."""
    header = KEYFILE_MAGIC + bytes([KEYFILE_VERSION])
    header += opslimit.to_bytes(4, "big") + memlimit.to_bytes(4, "big")
    return header + bytes(16 + 24 + 16)


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [
        (MAX_SECRET_KEY_OPSLIMIT + 1, MIN_SECRET_KEY_MEMLIMIT),
        (MIN_SECRET_KEY_OPSLIMIT, MAX_SECRET_KEY_MEMLIMIT + 1),
        (MIN_SECRET_KEY_OPSLIMIT - 1, MIN_SECRET_KEY_MEMLIMIT),
        (MIN_SECRET_KEY_OPSLIMIT, MIN_SECRET_KEY_MEMLIMIT - 1),
        (16, 1024**3),  # what protocol v1 allowed: 1 GiB and about 10 s per attempt
        (2**32 - 1, 2**32 - 1),
    ],
)
def test_hostile_costs_are_refused_before_argon2_runs(opslimit: int, memlimit: int) -> None:
    data = hostile_file(opslimit, memlimit)
    assert len(data) == 73
    started = time.monotonic()
    with pytest.raises(Malformed, match="cost"):
        unlock(data, b"pass")
    assert time.monotonic() - started < 0.5
    with pytest.raises(ValueError, match="bounds"):
        lock_from_parts(
            bundle(), b"p", salt=bytes(16), nonce=bytes(24), opslimit=opslimit, memlimit=memlimit
        )


def test_cost_bounds_are_inclusive() -> None:
    assert costs_in_bounds(MIN_SECRET_KEY_OPSLIMIT, MIN_SECRET_KEY_MEMLIMIT)
    assert costs_in_bounds(MAX_SECRET_KEY_OPSLIMIT, MAX_SECRET_KEY_MEMLIMIT)
    assert not costs_in_bounds(MAX_SECRET_KEY_OPSLIMIT + 1, MAX_SECRET_KEY_MEMLIMIT)
    # The defaults lie within the bounds a reader accepts.
    locked = lock(bundle(), b"pass", counter_random, opslimit=1, memlimit=8192)
    assert unlock(locked, b"pass").participant_id == "caw"


def test_the_xwing_seed_is_stored_as_32_bytes() -> None:
    locked = lock_from_parts(bundle(), b"pass", salt=bytes(16), nonce=bytes(24), **CHEAP)
    opened = unlock(locked, b"pass")
    assert [len(p.seed) for p in opened.prekeys] == [32, 32]
