"""The bounded replay set of (sender, message id) pairs (spec §9.3)."""

from __future__ import annotations

from factories import expect_error

from livcr_exchange.errors import Oversized, Replayed
from livcr_exchange.replay import ReplayCache

M1, M2, M3 = b"\x01" * 16, b"\x02" * 16, b"\x03" * 16


def test_first_sight_is_accepted_and_remembered() -> None:
    cache = ReplayCache()
    cache.check_unseen("coord", M1, 10)
    cache.check_and_remember("coord", M1, 100, 10)
    assert ("coord", M1) in cache
    assert len(cache) == 1


def test_repeat_is_replayed() -> None:
    cache = ReplayCache()
    cache.check_and_remember("coord", M1, 100, 10)
    with expect_error(Replayed):
        cache.check_and_remember("coord", M1, 100, 11)
    with expect_error(Replayed):
        cache.check_unseen("coord", M1, 99)
    with expect_error(Replayed):
        cache.check_and_remember("coord", M1, 500, 99)  # another expiry is the same message
    assert len(cache) == 1


def test_pairs_are_per_sender() -> None:
    cache = ReplayCache()
    cache.check_and_remember("coord", M1, 100, 10)
    cache.check_and_remember("caw", M1, 100, 10)
    cache.check_and_remember("coord", M2, 100, 10)
    assert len(cache) == 3
    assert ("clb", M1) not in cache


def test_check_unseen_records_nothing() -> None:
    cache = ReplayCache()
    cache.check_unseen("coord", M1, 10)
    cache.check_unseen("coord", M1, 10)
    assert len(cache) == 0
    cache.check_and_remember("coord", M1, 100, 10)


def test_entries_are_forgotten_once_the_message_expires() -> None:
    cache = ReplayCache()
    cache.check_and_remember("coord", M1, 100, 10)
    cache.check_and_remember("coord", M2, 200, 10)
    with expect_error(Replayed):
        cache.check_unseen("coord", M1, 99)
    cache.forget_expired(100)  # now == expires_at: the expiry check rejects it on its own
    assert ("coord", M1) not in cache
    assert ("coord", M2) in cache
    cache.check_unseen("coord", M1, 100)
    cache.check_and_remember("coord", M1, 300, 150)
    assert len(cache) == 2
    cache.forget_expired(10_000)
    assert len(cache) == 0


def test_checks_forget_expired_entries_on_their_own() -> None:
    cache = ReplayCache()
    cache.check_and_remember("coord", M1, 100, 10)
    cache.check_unseen("coord", M2, 100)
    assert len(cache) == 0


def test_full_cache_refuses_rather_than_forgets() -> None:
    cache = ReplayCache(capacity=2)
    cache.check_and_remember("coord", M1, 100, 10)
    cache.check_and_remember("coord", M2, 200, 10)
    with expect_error(Oversized):
        cache.check_and_remember("coord", M3, 300, 50)
    assert ("coord", M1) in cache
    assert ("coord", M2) in cache
    assert ("coord", M3) not in cache
    # A replay is still recognised as such when the cache is full.
    with expect_error(Replayed):
        cache.check_and_remember("coord", M1, 100, 50)
    # Once the earliest message expires there is room again.
    cache.check_and_remember("coord", M3, 300, 100)
    assert len(cache) == 2
    with expect_error(Oversized):
        cache.check_and_remember("caw", M1, 300, 150)
    cache.check_and_remember("caw", M1, 300, 200)
    assert ("coord", M3) in cache
    assert ("caw", M1) in cache
    assert len(cache) == 2


def test_capacity_of_one() -> None:
    cache = ReplayCache(capacity=1)
    cache.check_and_remember("coord", M1, 100, 0)
    with expect_error(Oversized):
        cache.check_and_remember("coord", M2, 100, 99)
    cache.check_and_remember("coord", M2, 200, 100)
    with expect_error(Replayed):
        cache.check_and_remember("coord", M2, 200, 199)


def test_many_entries_expire_in_order() -> None:
    cache = ReplayCache(capacity=1000)
    for i in range(1000):
        cache.check_and_remember("coord", i.to_bytes(16, "big"), 1000 - i, 0)
    with expect_error(Oversized):
        cache.check_and_remember("caw", M1, 5000, 0)
    cache.forget_expired(500)  # expiries 1..500 are gone, 501..1000 stay
    assert len(cache) == 500
    assert ("coord", (499).to_bytes(16, "big")) in cache
    assert ("coord", (500).to_bytes(16, "big")) not in cache
