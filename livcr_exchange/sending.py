"""The sender's rules (spec §9.3) as one table: each hub answer to a submission, the next step.

Pure, like ``cases.py``: the gateway classifies the hub's answer, looks the step up, and does
it. Nothing acknowledged is dropped: every answer leads to a retry, to a reseal (then a retry),
to sent (proven or not), or to ``failed`` kept with its code until an operator acts.
"""

from __future__ import annotations

from enum import StrEnum

from .constants import MAX_CLOCK_SKEW


class OutboxState(StrEnum):
    """Where a message of the outbox stands."""

    PENDING = "pending"  # to be submitted (again)
    SENT = "sent"  # the hub holds it (with a proven receipt, or none it could show)
    FAILED = "failed"  # refused for good; kept, body included, until retried or discarded
    DISCARDED = "discarded"  # an operator gave a failed message up


class HubAnswer(StrEnum):
    """What the hub answered to a submission, as far as the sender's rules care."""

    RECEIPT = "receipt"  # 200 or 201 with a receipt
    NO_ANSWER = "no_answer"  # no answer, a 5xx, or an answer that breaks the contract
    BUSY = "busy"  # 429: come back later
    TIME = "time"  # refused for its timestamp: the clocks disagree, or it waited too long
    REPLAYED = "replayed"  # the hub holds the (sender, message id) pair already
    REFUSED = "refused"  # any other refusal: the message itself is not acceptable


class Step(StrEnum):
    """What the outbox does next."""

    RETRY = "retry"  # the same bytes again, after a backoff
    RESEAL = "reseal"  # sealed again with a fresh timestamp, then retried after a backoff
    PROVEN = "proven"  # sent: the receipt is checked and kept
    UNPROVEN = "unproven"  # sent: the hub holds it but shows no receipt (spec §9.3)
    FAILED_KEPT = "failed_kept"  # refused for good: kept as failed with its code


TIME_CODES = frozenset({"timestamp_out_of_window", "stale"})
TOO_MANY_REQUESTS = 429
FIRST_SERVER_ERROR = 500

# (answer, whether an earlier attempt was made) -> step. A `replayed` answer to bytes never
# submitted before cannot be ours: another envelope holds the pair, and this one is refused.
TABLE: dict[tuple[HubAnswer, bool], Step] = {
    (HubAnswer.RECEIPT, False): Step.PROVEN,
    (HubAnswer.RECEIPT, True): Step.PROVEN,
    (HubAnswer.NO_ANSWER, False): Step.RETRY,
    (HubAnswer.NO_ANSWER, True): Step.RETRY,
    (HubAnswer.BUSY, False): Step.RETRY,
    (HubAnswer.BUSY, True): Step.RETRY,
    (HubAnswer.TIME, False): Step.RESEAL,
    (HubAnswer.TIME, True): Step.RESEAL,
    (HubAnswer.REPLAYED, False): Step.FAILED_KEPT,
    (HubAnswer.REPLAYED, True): Step.UNPROVEN,
    (HubAnswer.REFUSED, False): Step.FAILED_KEPT,
    (HubAnswer.REFUSED, True): Step.FAILED_KEPT,
}

# An envelope whose timestamp is this far from the sender's clock is sealed again before it
# goes: the hub refuses one more than MAX_CLOCK_SKEW away (spec §9.1); half is left for the
# difference between the clocks.
RESEAL_AFTER_SECONDS = MAX_CLOCK_SKEW // 2


def classify(status: int | None, code: str | None) -> HubAnswer:
    """The kind of a refusal (``status`` None: no answer at all)."""
    if status is None or status >= FIRST_SERVER_ERROR:
        return HubAnswer.NO_ANSWER
    if status == TOO_MANY_REQUESTS:
        return HubAnswer.BUSY
    if code in TIME_CODES:
        return HubAnswer.TIME
    if code == "replayed":
        return HubAnswer.REPLAYED
    return HubAnswer.REFUSED


def next_step(answer: HubAnswer, *, attempted_before: bool) -> Step:
    """The step the table gives ``answer``."""
    return TABLE[answer, attempted_before]


def needs_reseal(timestamp: int, expires_at: int, now: int) -> bool:
    """Whether an envelope sealed at ``timestamp`` must be sealed again before it goes at
    ``now``: its timestamp is too far from the clock, either way, and it has not expired."""
    return abs(now - timestamp) > RESEAL_AFTER_SECONDS and now < expires_at
