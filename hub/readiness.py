"""Whether the hub can do its work now (/readyz), as opposed to merely running (/healthz).

Ready means: the store is open and the log loaded with the hub's log key (start-up is over),
and the store commits. Commits are probed with one small write at most once every
PROBE_SECONDS, so an unauthenticated caller cannot make /readyz cost the store more than that;
a store failure seen by any request makes the next /readyz probe again at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .store.base import HubStore, StoreError

PROBE_SECONDS = 1.0
STARTING = "starting: the store is not open or the log is not loaded yet"


@dataclass
class Readiness:
    started: bool = False  # set once the store is open and the log loaded (with its key)
    _probed_at: float = float("-inf")
    _problem: str | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def store_failed(self) -> None:
        """A request saw the store fail: the next check probes it again."""
        self._probed_at = float("-inf")

    async def problems(self, store: HubStore, now: int) -> list[str]:
        """Why the hub is not ready; empty when it is."""
        if not self.started:
            return [STARTING]
        async with self._lock:
            moment = asyncio.get_running_loop().time()
            if moment - self._probed_at >= PROBE_SECONDS:
                self._probed_at = moment
                try:
                    await store.probe_write(now)
                except StoreError as exc:
                    self._problem = f"the store cannot commit: {exc}"
                else:
                    self._problem = None
        return [] if self._problem is None else [self._problem]
