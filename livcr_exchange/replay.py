"""A bounded seen-set of (sender, message id) pairs kept until the message expires (spec §9.3)."""

from __future__ import annotations

import heapq

from .errors import Oversized, Replayed

DEFAULT_REPLAY_CAPACITY = 1_000_000


class ReplayCache:
    """Remembers accepted messages until their expiry; after that the expiry check rejects them.

    Memory is bounded by ``capacity``. A full cache refuses new messages (``Oversized``) rather
    than forgetting one that has not expired, which would reopen the replay window.
    """

    def __init__(self, capacity: int = DEFAULT_REPLAY_CAPACITY) -> None:
        self._capacity = capacity
        self._expiry: dict[tuple[str, bytes], int] = {}
        self._by_expiry: list[tuple[int, str, bytes]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, key: tuple[str, bytes]) -> bool:
        return key in self._expiry

    def check_unseen(self, sender_id: str, message_id: bytes, now: int) -> None:
        """Raises Replayed if the pair is remembered; records nothing."""
        self.forget_expired(now)
        if (sender_id, message_id) in self._expiry:
            raise Replayed(f"message {message_id.hex()} from {sender_id} was seen before")

    def check_and_remember(
        self, sender_id: str, message_id: bytes, expires_at: int, now: int
    ) -> None:
        """Record the message as seen.

        Raises:
            Replayed: the pair was recorded before and has not yet expired.
            Oversized: the cache is full of unexpired entries.
        """
        self.forget_expired(now)
        key = (sender_id, message_id)
        if key in self._expiry:
            raise Replayed(f"message {message_id.hex()} from {sender_id} was seen before")
        if len(self._expiry) >= self._capacity:
            raise Oversized("replay cache is full of unexpired messages")
        self._expiry[key] = expires_at
        heapq.heappush(self._by_expiry, (expires_at, sender_id, message_id))

    def forget_expired(self, now: int) -> None:
        """Drop entries whose message has expired: the expiry check now rejects them on its own."""
        while self._by_expiry and self._by_expiry[0][0] <= now:
            _, sender_id, message_id = heapq.heappop(self._by_expiry)
            self._expiry.pop((sender_id, message_id), None)
