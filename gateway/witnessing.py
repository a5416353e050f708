"""The gateway's view of the witnesses: the cell's policy and the largest witnessed checkpoint.

Each maintenance round fetches the hub's cosigned checkpoint, verifies a quorum of the policy's
witnesses on it (spec §10.6) and checks it against every checkpoint this gateway has seen (a
cosigned checkpoint of another history halts it at once). A receipt whose leaf lies below the
largest such checkpoint is *witnessed*. When the checkpoints this gateway relies on stay without
a quorum for WITNESS_GRACE_ROUNDS rounds in a row, its hub is showing it a history the witnesses
did not cosign (a split view or a rollback), and the gateway halts (spec §10.7).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Final

import aiohttp
import structlog

from livcr_exchange.audit.cosignature import cosign, verify_cosigned_checkpoint
from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.service.hub_client import HubClient, HubRefused
from livcr_exchange.witness_policy import WitnessPolicy, empty_policy

from .store import GatewayStore
from .trust import DIRECTORY_META_KEY, CheckpointTracker, DirectoryUntrusted, TrustFailure
from .witness_key import GatewayWitness

log = structlog.get_logger("livcr.gateway.witnessing")
WITNESS_GRACE_ROUNDS: Final = 3
POLICY_META_KEY = "witness_policy"
WITNESSED_META_KEY = "witnessed_size"


class LogUnwitnessed(TrustFailure):
    """The hub's checkpoints stayed without a witness quorum: a split view or a rollback."""


class WitnessMonitor:
    """Tracks the witness policy in force and the largest checkpoint a quorum cosigned."""

    def __init__(
        self,
        store: GatewayStore,
        tracker: CheckpointTracker,
        cell_id: str,
        root: IdentityPublicKey,
        log_origin: str,
        log_key: IdentityPublicKey,
        clock: Callable[[], int],
        witness: GatewayWitness | None = None,
        grace_rounds: int = WITNESS_GRACE_ROUNDS,
    ) -> None:
        self._clock = clock
        self.witness = witness
        self._cosigned_size = -1
        self._store = store
        self._tracker = tracker
        self._cell_id = cell_id
        self._root = root
        self._origin = log_origin
        self._log_key = log_key
        self._grace = grace_rounds
        self.policy = empty_policy(cell_id)
        self.witnessed_size = 0
        self._waiting_for = 0  # the size that must be covered
        self._rounds_waited = 0

    async def load(self) -> None:
        """The policy and witnessed size kept from earlier runs (the policy verified again).

        Raises:
            DirectoryUntrusted: the kept policy does not verify against the root key.
        """
        kept = await self._store.get_meta(POLICY_META_KEY)
        if kept is not None:
            self.policy = self._open(base64.b64decode(kept))
        size = await self._store.get_meta(WITNESSED_META_KEY)
        self.witnessed_size = 0 if size is None else int(size)

    def _open(self, signed: bytes) -> WitnessPolicy:
        try:
            return WitnessPolicy.open(signed, self._root, self._cell_id)
        except LivcrError as exc:
            raise DirectoryUntrusted(f"the witness policy does not verify: {exc}") from exc

    async def update_policy(self) -> None:
        """Adopt the policy of the directory listing fetched last, if newer than ours.

        Raises:
            DirectoryUntrusted: the served policy does not verify against the root key.
        """
        text = await self._store.get_meta(DIRECTORY_META_KEY)
        listing: dict[str, Any] = {} if text is None else json.loads(text)
        served = listing.get("witness_policy")
        if not isinstance(served, str):
            return
        signed = base64.b64decode(served)
        policy = self._open(signed)
        # An older policy the hub serves again is not believed (spec §10.8).
        if policy.sequence > self.policy.sequence:
            self.policy = policy
            await self._store.set_meta(POLICY_META_KEY, served)
            log.info("witness policy", sequence=policy.sequence, quorum=policy.quorum)

    async def cosign(self, client: HubClient) -> None:
        """As one of the cell's witnesses, cosign the largest checkpoint this gateway verified
        and send the cosignature to the hub (spec §10.7).

        Every checkpoint the tracker holds is consistent with every other (it halts the gateway
        otherwise) and only the largest is cosigned, so this witness never cosigns a rollback
        or a fork of what it cosigned before: its state is the tracker's.

        Best effort: a hub that does not take it is logged, and the next round tries again.
        """
        latest = await self._tracker.latest()
        if self.witness is None or latest is None or latest[0].size <= self._cosigned_size:
            return
        if self.witness.public not in self.policy.witnesses:
            return  # not (or no longer) a witness of this cell
        checkpoint, note = latest
        line = cosign(checkpoint.body(), self.witness.name, self.witness.key, self._clock())
        try:
            await client.offer_cosignature(note + line)
        except (HubRefused, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("the hub did not take this gateway's cosignature", error=str(exc))
            return
        self._cosigned_size = checkpoint.size

    def is_witnessed(self, leaf_index: int | None) -> bool:
        return leaf_index is not None and 0 <= leaf_index < self.witnessed_size

    async def round(self, client: HubClient) -> None:
        """Fetch and check the cosigned checkpoint; count rounds without a quorum.

        Raises:
            LogForked: the cosigned checkpoint contradicts a checkpoint seen before.
            LogUnwitnessed: no quorum covered our checkpoints for the grace rounds.
            HubRefused, aiohttp.ClientError: the hub did not answer (the round does not count).
        """
        if self.policy.quorum == 0:
            return
        note = await client.cosigned()
        if note is not None:
            await self._witness(note, self._tracker)
        latest = await self._tracker.latest()
        seen = 0 if latest is None else latest[0].size
        if self.witnessed_size >= self._waiting_for:
            self._waiting_for, self._rounds_waited = seen, 0
        if self.witnessed_size >= seen:
            return
        self._rounds_waited += 1
        if self._rounds_waited >= self._grace:
            raise LogUnwitnessed(
                f"checkpoint {self._waiting_for} has no quorum of {self.policy.quorum} witness"
                f" cosignatures after {self._rounds_waited} rounds: the hub shows this gateway"
                " a history the witnesses did not cosign"
            )

    async def _witness(self, note: bytes, tracker: CheckpointTracker) -> None:
        try:
            coverage = verify_cosigned_checkpoint(
                note,
                self._origin,
                self._log_key.raw,
                self.policy.witnesses,
                self.policy.quorum,
                now=self._clock(),
            )
        except LivcrError as exc:
            log.warning("cosigned checkpoint not accepted", code=exc.code, reason=str(exc))
            return
        checkpoint = await tracker.observe(note)  # LogForked: another history, cosigned
        if coverage.checkpoint.size > self.witnessed_size:
            self.witnessed_size = checkpoint.size
            await self._store.set_meta(WITNESSED_META_KEY, str(checkpoint.size))
