"""What the gateway's parts share: keys, store, hub client, clock, the verified directory, halt.

Also the two records the embedding API hands out: a sent message's ``Receipt`` and a received
``Message``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from livcr_exchange.bodies import Body
from livcr_exchange.directory import Directory
from livcr_exchange.hashing import RandomSource
from livcr_exchange.keys import IdentityKey
from livcr_exchange.policy import (
    Decision,
    MessageFacts,
    evaluate_before_sealing,
    evaluate_with_body,
    participant_of,
)
from livcr_exchange.service.hub_client import HubClient

from .config import GatewayConfig
from .document import Document
from .errors import GatewayHalted
from .eventlog import EventLogger
from .localbox import LocalBox
from .store import GatewayStore
from .trust import CheckpointTracker
from .witnessing import WitnessMonitor

DAY = 86_400


@dataclass(frozen=True)
class Receipt:
    """The hub's acknowledgement: where the message sits in the log, proven by inclusion.

    In one case the hub holds the message but shows no receipt for it (spec §9.3): an earlier
    attempt was committed, and the hub accepted other bytes under the message id or can no
    longer show their log record. The message was sent; its place in the log is not proven, so
    every field but ``message_id`` is None (``proven`` is False).
    """

    message_id: bytes
    leaf_index: int | None
    logged_at: int | None
    tree_size: int | None
    checkpoint: bytes | None

    @classmethod
    def unproven(cls, message_id: bytes) -> Receipt:
        return cls(message_id, None, None, None, None)

    @property
    def proven(self) -> bool:
        return self.leaf_index is not None


@dataclass(frozen=True)
class Message:
    """A received message that passed every check; ``body`` is the decoded, schema-checked body."""

    message_id: bytes
    case_ref: str
    purpose: str
    sender_id: str
    recipients: tuple[str, ...]
    meeting_ref: str | None
    logged_at: int
    body: Body = field(repr=False)
    raw_body: bytes = field(repr=False)
    attachments: tuple[Document, ...] = ()  # the documents the body names, in its order


def body_aad(message_id: bytes, direction: str, case_ref: str, purpose: str) -> bytes:
    """What a dossier body is sealed to with the local key."""
    return b"|".join((message_id, direction.encode(), case_ref.encode(), purpose.encode()))


@dataclass
class Context:
    """The shared state of one gateway; its parts hold it, none owns it."""

    config: GatewayConfig
    identity: IdentityKey
    store: GatewayStore
    box: LocalBox
    client: HubClient
    clock: Callable[[], int]
    random: RandomSource
    trust: CheckpointTracker
    directory: Directory
    witnesses: WitnessMonitor
    log: EventLogger
    halted: str | None = None
    on_halt: list[Callable[[str], None]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def participant_id(self) -> str:
        return self.config.participant_id

    def halt(self, reason: str) -> None:
        """Stop trusting the hub: no more sending, and no more accepting or acknowledging what
        it pushes (it keeps those queued)."""
        if self.halted is None:
            self.halted = reason
            self.log.error("gateway halted: the hub is not trustworthy", reason=reason)
            for callback in self.on_halt:
                callback(reason)

    def check_running(self) -> None:
        """Raises GatewayHalted when the gateway stopped trusting the hub."""
        if self.halted is not None:
            raise GatewayHalted(self.halted)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` earlier tries: doubling, capped."""
        settings = self.config.gateway
        return min(
            settings.retry_max_seconds, settings.retry_initial_seconds * 2.0 ** min(attempts, 10)
        )

    def decide_header(self, facts: MessageFacts, at: int) -> Decision:
        """Spec §7.3 steps 1-3 and 6 as the verified directory decides them at ``at``.

        Raises:
            UnknownSender, KeyRevoked, KeyNotValid: the sender's entry is not usable at ``at``.
        """
        sender = participant_of(self.directory.current_entry(facts.sender_id, at))
        entries = self.directory.participants(at)
        recipients = {r: participant_of(entries[r]) for r in facts.recipients if r in entries}
        return evaluate_before_sealing(facts, sender, recipients)

    def decide(self, facts: MessageFacts, body: bytes, at: int) -> Decision:
        """Spec §7.3 steps 1-3, 6, 8 and 9 as the verified directory decides them at ``at``.

        Raises:
            UnknownSender, KeyRevoked, KeyNotValid: the sender's entry is not usable at ``at``.
        """
        sender = participant_of(self.directory.current_entry(facts.sender_id, at))
        entries = self.directory.participants(at)
        recipients = {r: participant_of(entries[r]) for r in facts.recipients if r in entries}
        return evaluate_with_body(facts, sender, recipients, body)
