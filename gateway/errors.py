"""What the gateway's calls raise besides library errors, and what counts as no answer."""

from __future__ import annotations

import aiohttp

from livcr_exchange.service.hub_client import HubRefused
from livcr_exchange.service.problems import Problem

# What a hub that does not answer raises (a 5xx answer, or one that breaks the contract, counts
# as none: the hub is not serving).
NO_ANSWER = (aiohttp.ClientError, TimeoutError, OSError)


class GatewayHalted(Exception):
    """The gateway found the hub untrustworthy (a forked log, a bad directory) and stopped."""


class HubUnavailable(ConnectionError):
    """The hub did not answer, and what was asked cannot be done without it; nothing was stored."""


class SendRefused(Problem):
    """The hub refused a message for good; ``code``, ``detail`` and ``status`` are its answer.
    The message is kept as failed (``livcr gateway outbox``)."""

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class SendTimeout(TimeoutError):
    """``send`` stopped waiting for the receipt; the message stays queued and will still go."""

    def __init__(self, message_id: bytes) -> None:
        super().__init__(f"no receipt yet for message {message_id.hex()}; it stays in the outbox")
        self.message_id = message_id


def hub_not_serving(exc: BaseException) -> bool:
    """Whether ``exc`` means the hub did not answer (rather than that it refused)."""
    return isinstance(exc, NO_ANSWER) or (isinstance(exc, HubRefused) and exc.status >= 500)


class UploadGone(Problem):
    """A send names an upload this gateway does not hold: never made, expired, or sent."""

    def __init__(self, attachment_id: str) -> None:
        super().__init__(
            "attachment_unknown",
            f"no upload {attachment_id[:40]!r}: upload it (POST /v1/attachments) and send it once",
            422,
        )
