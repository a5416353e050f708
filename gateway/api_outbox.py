"""The local API's outbox side: sending with an Idempotency-Key, and the operator's view of the
outbox (list, retry, discard) and of the quarantine.

An ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header) binds a send to the request
body's hash: the same key and body again answer with that message's state, whatever became of
the first connection; the same key with another body is 422, and a key whose first request is
still running is 409.
"""

from __future__ import annotations

import hashlib

import msgspec
from aiohttp import web

from livcr_exchange.hub_answers import ReceiptAnswer
from livcr_exchange.sending import OutboxState
from livcr_exchange.service.problems import Problem

from .api_inputs import query_int, reply
from .context import Receipt
from .facade import Gateway
from .store import OutboxRow

MAX_KEY_LENGTH = 255
IdempotencyIn = tuple[str, bytes] | None


class Idempotency:
    """The keys whose first request is still being served."""

    def __init__(self) -> None:
        self.running: set[str] = set()


IDEMPOTENCY = web.AppKey("idempotency", Idempotency)
GATEWAY_KEY = web.AppKey("outbox-gateway", Gateway)


def idempotency_of(request: web.Request, body: bytes) -> IdempotencyIn:
    """The request's (key, body hash), None without the header. Raises Problem (400)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip().strip('"')
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Problem("malformed", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII")
    return key, hashlib.sha256(body).digest()


def receipt_json(receipt: Receipt) -> dict[str, object]:
    """The receipt as specs/gateway-api.yaml has it: all but the message id null when the hub
    showed no receipt (``Receipt.proven`` is False)."""
    return {
        "message_id": receipt.message_id.hex(),
        "leaf_index": receipt.leaf_index,
        "logged_at": receipt.logged_at,
        "tree_size": receipt.tree_size,
        "checkpoint": None if receipt.checkpoint is None else receipt.checkpoint.decode("utf-8"),
    }


def answer_of(row: OutboxRow) -> web.Response:
    """What a send answered, from its outbox row now.

    Raises:
        Problem: the message was refused (kept as failed) or discarded.
    """
    minted = {"case_ref": row.case_ref}  # the reference a referral's send minted, told again
    if row.state is OutboxState.SENT:
        if row.receipt is None:
            return reply({**receipt_json(Receipt.unproven(row.message_id)), **minted}, 201)
        answer = msgspec.json.decode(row.receipt, type=ReceiptAnswer)
        receipt = Receipt(
            row.message_id,
            answer.leaf_index,
            answer.logged_at,
            answer.tree_size,
            answer.checkpoint.encode(),
        )
        return reply({**receipt_json(receipt), **minted}, 201)
    if row.state is OutboxState.PENDING:
        return reply({"message_id": row.message_id.hex(), "state": "queued", **minted}, 202)
    code = row.last_error or "refused"
    raise Problem(code, row.detail or f"the message was {row.state.value}", 409)


async def remembered(gateway: Gateway, idempotency: IdempotencyIn) -> web.Response | None:
    """The answer to a repeated send under the same key, or None for a first one.

    Raises:
        Problem: 422 when the key came with another body; the refusal of a failed message.
    """
    if idempotency is None:
        return None
    known = await gateway.ctx.store.idempotent(idempotency[0])
    if known is None:
        return None
    request_hash, message_id = known
    if request_hash != idempotency[1]:
        raise Problem("idempotency_key_reused", "this Idempotency-Key came with another body", 422)
    row = await gateway.ctx.store.outbox_row(message_id)
    if row is None:  # pragma: no cover  (the key is stored with its row)
        raise Problem("not_found", "no such message")
    return answer_of(row)


def _row_json(row: OutboxRow) -> dict[str, object]:
    return {
        "message_id": row.message_id.hex(),
        "case_ref": row.case_ref,
        "purpose": row.purpose,
        "state": row.state.value,
        "attempts": row.attempts,
        "code": row.last_error,
        "detail": row.detail,
    }


def message_id_of(request: web.Request) -> bytes:
    text = request.match_info["message_id"]
    if len(text) != 32 or not all(c in "0123456789abcdef" for c in text):
        raise Problem("malformed", "message_id must be 32 lowercase hex digits")
    return bytes.fromhex(text)


async def list_outbox(request: web.Request) -> web.Response:
    names = request.query.get("state", "pending,failed").split(",")
    try:
        states = [OutboxState(n) for n in names]
    except ValueError as exc:
        raise Problem("malformed", f"state must list {', '.join(OutboxState)}") from exc
    rows = await request.app[GATEWAY_KEY].outbox.rows(states)
    return reply({"messages": [_row_json(r) for r in rows]})


async def retry(request: web.Request) -> web.Response:
    if not await request.app[GATEWAY_KEY].outbox.retry_failed(message_id_of(request)):
        raise Problem("not_found", "no failed message with that id")
    return reply({"state": "pending"})


async def discard(request: web.Request) -> web.Response:
    if not await request.app[GATEWAY_KEY].outbox.discard(message_id_of(request)):
        raise Problem("not_found", "no failed message with that id")
    return reply({"state": "discarded"})


async def quarantine(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 100, 1, 1000)
    rows = await request.app[GATEWAY_KEY].ctx.store.quarantined(limit)
    items = [
        {
            "seq": r.seq,
            "message_id": r.message_id.hex(),
            "code": r.code,
            "at": r.at,
            "kept": r.kept,
            "erased": r.erased_at is not None,
        }
        for r in rows
    ]
    return reply({"envelopes": items})


def outbox_routes(app: web.Application, gateway: Gateway) -> None:
    app[GATEWAY_KEY] = gateway
    app[IDEMPOTENCY] = Idempotency()
    app.router.add_routes(
        [
            web.get("/v1/outbox", list_outbox),
            web.post("/v1/outbox/{message_id}/retry", retry),
            web.post("/v1/outbox/{message_id}/discard", discard),
            web.get("/v1/quarantine", quarantine),
        ]
    )
