"""What the gateway's calls raise besides library errors, and what counts as no answer."""

from __future__ import annotations

import aiohttp

from livcr_exchange.service.hub_client import HubRefused

# What a hub that does not answer raises (a 5xx answer, or one that breaks the contract, counts
# as none: the hub is not serving).
NO_ANSWER = (aiohttp.ClientError, TimeoutError, OSError)


class GatewayHalted(Exception):
    """The gateway found the hub untrustworthy (a forked log, a bad directory) and stopped."""


class HubUnavailable(ConnectionError):
    """The hub did not answer, and what was asked cannot be done without it; nothing was stored."""


class SendRefused(Exception):
    """The hub refused a message for good; ``code`` and ``status`` are the hub's answer."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status


class SendTimeout(TimeoutError):
    """``send`` stopped waiting for the receipt; the message stays queued and will still go."""

    def __init__(self, message_id: bytes) -> None:
        super().__init__(f"no receipt yet for message {message_id.hex()}; it stays in the outbox")
        self.message_id = message_id


def hub_not_serving(exc: BaseException) -> bool:
    """Whether ``exc`` means the hub did not answer (rather than that it refused)."""
    return isinstance(exc, NO_ANSWER) or (isinstance(exc, HubRefused) and exc.status >= 500)
