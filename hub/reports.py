"""What operator commands report about a hub's store: status, the directory as a file,
retention's purge. Read-mostly; the purge deletes only what retention says must go."""

from __future__ import annotations

import base64
import importlib.metadata
from collections import Counter
from collections.abc import Callable
from typing import Any

from livcr_exchange.audit.leaves import decode_leaf
from livcr_exchange.cases import CaseState
from livcr_exchange.times import iso8601

from .config import HubConfig
from .operator import load_directory
from .store.base import HubStore
from .store.migrations import SCHEMA_VERSION


async def directory_listing(store: HubStore, config: HubConfig) -> dict[str, Any]:
    """The signed directory as GET /v1/directory serves it (and `livcr inspect --directory`
    reads it), after checking that every statement verifies against the root key.

    Raises:
        LivcrError: a stored statement does not verify.
    """
    await load_directory(store, config)
    statements = await store.statements()
    return {
        "cell_id": config.hub.cell_id,
        "root_key": config.hub.root_key,
        "entries": [base64.b64encode(s).decode() for kind, _, s in statements if kind == "entry"],
        "revocations": [
            base64.b64encode(s).decode() for kind, _, s in statements if kind == "revocation"
        ],
    }


async def status(store: HubStore, config: HubConfig, now: int) -> dict[str, Any]:
    """What `livcr hub status` shows; times in ISO 8601."""
    directory = await load_directory(store, config)
    usable = directory.participants(now)
    latest = {e.participant_id: e for e in sorted(directory.entries, key=lambda e: e.not_before)}
    cases = await store.cases()
    counts = await store.counts()
    open_cases = Counter(
        c.state for c in cases if c.state not in {CaseState.AFGESLOTEN, CaseState.GEWIST}
    )
    return {
        "cell_id": config.hub.cell_id,
        "version": package_version(),
        "schema": SCHEMA_VERSION,
        "last_checkpoint": await _last_checkpoint(store),
        "participants": [
            {
                "id": pid,
                "role": entry.role.value,
                "organisation": entry.organisation,
                "status": "active" if pid in usable else "revoked or expired",
                "enrolled_until": iso8601(entry.not_after),
            }
            for pid, entry in sorted(latest.items())
        ],
        "revocations": [
            {
                "id": r.participant_id,
                "key_id": r.identity_key_id.hex(),
                "revoked_at": iso8601(r.revoked_at),
                "reason": r.reason,
            }
            for r in sorted(directory.revocations, key=lambda r: r.revoked_at)
        ],
        "open_cases_by_state": dict(sorted(open_cases.items())),
        "closed_cases": sum(
            1 for c in cases if c.state in {CaseState.AFGESLOTEN, CaseState.GEWIST}
        ),
        "queue": {
            "envelopes": counts["envelopes"],
            "deliveries_pending": counts["deliveries_pending"],
        },
        "log_size": counts["log_size"],
    }


def package_version() -> str:
    """The installed livcr-exchange version."""
    try:
        return importlib.metadata.version("livcr-exchange")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def _last_checkpoint(store: HubStore) -> dict[str, Any] | None:
    """The newest stored checkpoint's size and when its last leaf was logged (None: no leaf
    yet, or its data is gone by retention)."""
    sizes = [size for size, _ in await store.checkpoints()]
    if not sizes or max(sizes) == 0:
        return None
    size = max(sizes)
    leaves = await store.leaves(size - 1, size)
    data = leaves[0][2] if leaves else None
    at = None if data is None else iso8601(decode_leaf(data).logged_at)
    return {"size": size, "logged_at": at}


PURGE_BATCH = 500  # rows per store call, as the serving hub's background rounds take them


async def cases_due_for_purge(store: HubStore, now: int) -> list[tuple[str, int]]:
    """Closed cases whose retention period is over and whose leaves still hold data:
    (case reference, purge due at)."""
    size = await store.tree_size()
    due = []
    for case in await store.cases():
        if case.purge_after is None or case.purge_after > now:
            continue
        if any(data is not None for _, _, data in await store.leaves(0, size, case.case_ref)):
            due.append((case.case_ref, case.purge_after))
    return sorted(due)


async def purge(store: HubStore, now: int, on_rows: Callable[[int], None] | None = None) -> int:
    """Run the retention purge to the end now, in bounded batches; the rows removed.

    The serving hub does the same in the background; this is for an operator who wants it done
    (or a hub that is not serving). Leaf hashes stay, so the log still verifies.
    """
    removed = 0
    while True:
        done = await store.purge_due(now, PURGE_BATCH)
        removed += done
        if on_rows is not None:
            on_rows(done)
        if done == 0:  # the round that finds nothing left takes the cases off the schedule
            return removed
