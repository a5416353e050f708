"""The console's log verification: incremental, in the background, with progress.

The first run recomputes the tree from every stored leaf; each later run continues from the
tree the previous one built, so it reads only the leaves added since. Every run checks the
signed checkpoints stored since the last run against the recomputed roots. A problem found stays
reported: the next run starts over from leaf 0.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from livcr_exchange.audit.checkpoint import open_checkpoint
from livcr_exchange.audit.leaves import decode_leaf
from livcr_exchange.audit.merkle import LeafHashList, leaf_hash, root_hash
from livcr_exchange.errors import LivcrError

from ..state import Hub

CHUNK = 5_000  # leaves per store read; progress is reported between chunks


@dataclass
class Verification:
    """State of the latest run, read by the log page."""

    running: bool = False
    target: int = 0  # leaves this run will have checked at the end
    checked: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    started_at: int | None = None
    finished_at: int | None = None
    _tree: LeafHashList = field(default_factory=LeafHashList)
    _checkpoint_size: int = -1  # checkpoints up to this size were checked
    _task: asyncio.Task[None] | None = None

    def start(self, hub: Hub) -> bool:
        """Start a run unless one is running; False when one was."""
        if self.running:
            return False
        if self.problems:  # a failed run: check everything again
            self._tree, self._checkpoint_size = LeafHashList(), -1
        self.running, self.problems, self.checkpoints = True, [], 0
        self.started_at, self.finished_at = hub.clock(), None
        self.checked = len(self._tree)
        self._task = asyncio.create_task(self._run(hub), name="console-verify")
        return True

    async def _run(self, hub: Hub) -> None:
        try:
            self.target = await hub.store.tree_size()
            while self.checked < self.target and not self.problems:
                await self._chunk(hub, min(self.target, self.checked + CHUNK))
                await asyncio.sleep(0)  # let requests through between chunks
            if not self.problems:
                await self._checkpoints(hub)
        except Exception as exc:  # noqa: BLE001  (a failed run is reported, not raised)
            self.problems.append(f"verification stopped: {exc}")
        finally:
            self.running, self.finished_at = False, hub.clock()

    async def _chunk(self, hub: Hub, end: int) -> None:
        for index, stored_hash, data in await hub.store.leaves(self.checked, end):
            if index != len(self._tree):
                self.problems.append(f"leaf {len(self._tree)} is missing")
                return
            if data is not None and leaf_hash(data) != stored_hash:
                self.problems.append(f"leaf {index}: data does not match its hash")
            elif data is not None:
                try:
                    decode_leaf(data)
                except LivcrError as exc:
                    self.problems.append(f"leaf {index}: {exc.code}")
            self._tree.append(stored_hash)
            self.checked = len(self._tree)

    async def _checkpoints(self, hub: Hub) -> None:
        for size, note in await hub.store.checkpoints():
            if size <= self._checkpoint_size or size > len(self._tree):
                continue
            try:
                checkpoint = open_checkpoint(note, hub.log.key_name, hub.log.public_key)
            except LivcrError as exc:
                self.problems.append(f"checkpoint {size}: {exc.code}")
                continue
            if checkpoint.size != size or checkpoint.root != root_hash(self._tree, size):
                self.problems.append(f"checkpoint {size}: root differs from the recomputed log")
            self.checkpoints += 1
            self._checkpoint_size = size
