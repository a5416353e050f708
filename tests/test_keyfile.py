"""Passphrase-protected secret-key files."""

from __future__ import annotations

import pytest

from livcr_exchange.errors import Malformed, WrongPassphrase
from livcr_exchange.keyfile import KEYFILE_MAGIC, SecretBundle, lock, lock_from_parts, unlock
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite

CHEAP = {"opslimit": 1, "memlimit": 8192}


def bundle() -> SecretBundle:
    return SecretBundle(
        "caw",
        IdentityKey.from_seed(bytes(range(32))),
        (PrekeySecret(Suite.X25519, bytes(32)), PrekeySecret(Suite.XWING, bytes(range(96)))),
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
        lambda data: data[:8] + b"\x02" + data[9:],
        lambda data: data[:9] + (10**6).to_bytes(4, "big") + data[13:],
        lambda data: data[:20],
    ],
    ids=["magic", "version", "cost_out_of_bounds", "truncated"],
)
def test_malformed_files_are_named(mutate: object) -> None:
    locked = lock_from_parts(bundle(), b"pass", salt=bytes(16), nonce=bytes(24), **CHEAP)
    with pytest.raises(Malformed):
        unlock(mutate(locked), b"pass")  # type: ignore[operator]


def test_repr_hides_secrets() -> None:
    text = repr(bundle()) + repr(bundle().identity) + repr(bundle().prekeys)
    assert bytes(range(32)).hex() not in text
    assert "hidden" in text
