"""HTTP handlers of the hub's /v1 API (specs/hub-api.yaml). Thin: parse, call, answer."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from livcr_exchange.errors import LivcrError
from livcr_exchange.hub_answers import (
    AckResult,
    BatchItem,
    BatchResult,
    CaseView,
    ConsistencyAnswer,
    DirectoryListing,
    InboxPage,
    InclusionAnswer,
    PrekeyListing,
    StoredCount,
)
from livcr_exchange.service.problems import Problem
from livcr_exchange.wire import check_ident

from . import operations
from .admission import body_of, streams
from .appkeys import AUDITED, CALLER, HUB, METRICS, PURPOSE, caller_of
from .intake import fetch_delivery, submit_streamed
from .metrics import gauge_lines
from .store.base import CaseRecord
from .witnessing import policy_from_statements

MAX_FETCH = 100
MAX_BATCH = 100

# \A and \Z, not ^ and $: Python's $ also matches before a final newline ("caw\n").
Hex16 = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]
Ident = Annotated[str, msgspec.Meta(pattern=r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")]
Base64 = Annotated[str, msgspec.Meta(max_length=100_000_000)]


class ReceiptIn(msgspec.Struct, forbid_unknown_fields=True):
    message_id: Hex16
    # A u64 in the signed message; msgspec bounds stop at int64, far beyond any real time.
    received_at: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    signature: Base64


class AckRequest(msgspec.Struct, forbid_unknown_fields=True):
    receipts: Annotated[list[ReceiptIn], msgspec.Meta(min_length=1, max_length=MAX_FETCH)]


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    # Decoded from base64 with the rest of the body: one bad item refuses the whole batch before
    # any envelope of it is accepted, instead of half a batch stored behind a 400.
    envelopes: Annotated[list[bytes], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class PrekeyUpload(msgspec.Struct, forbid_unknown_fields=True):
    statements: Annotated[list[Base64], msgspec.Meta(min_length=1, max_length=16)]


class CaseOpen(msgspec.Struct, forbid_unknown_fields=True):
    case_ref: Ident
    members: Annotated[list[Ident], msgspec.Meta(max_length=64)] = []


class MembersChange(msgspec.Struct, forbid_unknown_fields=True):
    add: Annotated[list[Ident], msgspec.Meta(max_length=64)] = []
    remove: Annotated[list[Ident], msgspec.Meta(max_length=64)] = []
    owner: Ident | None = None


class MeetingIn(msgspec.Struct, forbid_unknown_fields=True):
    meeting_ref: Ident
    present: Annotated[list[Ident], msgspec.Meta(min_length=1, max_length=64)]


class TransitionIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Ident
    reason: Ident | None = None


def decode_json(data: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:
        raise Problem("malformed", f"request body: {exc}") from exc


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII text
        raise Problem("malformed", "not standard base64") from exc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def query_int(
    request: web.Request, name: str, default: int | None = None, *, low: int = 0, high: int = 2**62
) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise Problem("malformed", f"query parameter {name} is required")
        return default
    # isascii: str.isdigit() also accepts digits int() refuses ("²"); 19 digits bound int().
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise Problem("malformed", f"query parameter {name} must be an integer in [{low}, {high}]")
    return int(raw)


# Envelopes.
def _noter(request: web.Request) -> Callable[[str], None]:
    """Records a submitted envelope's purpose for the request's log line (a batch: the last)."""

    def note(purpose: str) -> None:
        request[PURPOSE] = purpose

    return note


async def submit(request: web.Request) -> web.Response:
    if streams(request):
        return await submit_streamed(request)
    hub = request.app[HUB]
    request[AUDITED] = True  # accept_envelope audits every refusal, with the message id
    receipt = await operations.accept_envelope(
        hub, caller_of(request), body_of(request), note_purpose=_noter(request)
    )
    if receipt.accepted_before:  # 200: the original receipt of a resubmission (spec §9.3)
        return json(receipt.answer())
    request.app[METRICS].accepted(request[PURPOSE])
    return json(receipt.answer(), status=201)


async def submit_batch(request: web.Request) -> web.Response:
    """Several envelopes in one request; each gets its own receipt or problem."""
    hub = request.app[HUB]
    batch = decode_json(body_of(request), BatchRequest)
    request[AUDITED] = True  # from here on, accept_envelope audits each refused envelope
    results: list[BatchItem] = []
    for envelope in batch.envelopes:
        try:
            receipt = await operations.accept_envelope(
                hub, caller_of(request), envelope, note_purpose=_noter(request)
            )
        except LivcrError as exc:
            results.append(BatchItem(code=exc.code, detail=exc.wire_reason))
        else:
            if not receipt.accepted_before:
                request.app[METRICS].accepted(request[PURPOSE])
            results.append(
                BatchItem(receipt=receipt.answer(), accepted_before=receipt.accepted_before)
            )
    return json(BatchResult(results))


# Inbox.
async def inbox(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    after = query_int(request, "after", 0)
    limit = query_int(request, "limit", 50, low=1, high=MAX_FETCH)
    records = await hub.store.pending(caller_of(request).participant_id, after, limit)
    items = [operations.delivery_item(r) for r in records]
    return json(InboxPage(items, records[-1].seq if records else after))


async def ack(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    body = decode_json(body_of(request), AckRequest)
    receipts = [
        (bytes.fromhex(r.message_id), r.received_at, unb64(r.signature)) for r in body.receipts
    ]
    indexes, unknown = await operations.acknowledge(hub, caller_of(request), receipts)
    return json(AckResult(len(indexes), indexes, unknown))


# CLOSE: the gateway closed; CLOSING: the hub is closing it; LOST: the connection just ended.
LOST = frozenset({WSMsgType.CLOSED, WSMsgType.ERROR})
STREAM_ENDINGS = LOST | {WSMsgType.CLOSE, WSMsgType.CLOSING}


async def stream(request: web.Request) -> web.WebSocketResponse:
    """Push delivery notices to an online gateway: first what is pending, then as envelopes
    arrive. A notice is small whatever the envelope's size; the gateway fetches the bytes."""
    hub = request.app[HUB]
    caller = caller_of(request)
    socket = web.WebSocketResponse(heartbeat=20)
    await socket.prepare(request)
    hub.push.add(caller.participant_id, caller.entry.identity_key.key_id, socket)
    hub.push.drop_invalid(hub.directory, hub.clock())  # revoked since the request's check?
    try:
        after = 0
        while records := await hub.store.pending(caller.participant_id, after, MAX_FETCH):
            for record in records:
                if not hub.push.holds(caller.participant_id, socket):
                    return socket  # dropped meanwhile (revoked): it gets nothing more
                await socket.send_str(
                    msgspec.json.encode(operations.delivery_frame(record)).decode()
                )
            after = records[-1].seq
        if not hub.push.holds(caller.participant_id, socket):
            return socket
        await socket.send_str('{"type":"caught_up"}')
        while (message := await socket.receive()).type not in STREAM_ENDINGS:
            pass  # a gateway has nothing to say on its stream; pings are answered by aiohttp
        if message.type in LOST and hub.push.holds(caller.participant_id, socket):
            # No closing handshake, and the hub did not drop the socket itself: the gateway went
            # away (or missed its heartbeat). The access log counts that as a client gone, as it
            # does when the hang-up comes while the hub is still writing.
            raise ConnectionResetError("push stream ended without a close frame")
    finally:
        hub.push.remove(caller.participant_id, socket)
    return socket


# Directory and prekeys.
async def directory(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    statements = await hub.store.statements()
    policy = policy_from_statements(statements, hub.config)
    return json(
        DirectoryListing(
            hub.config.hub.cell_id,
            hub.root.to_text(),
            [s for kind, _, s in statements if kind == "entry"],
            [s for kind, _, s in statements if kind == "revocation"],
            None if policy is None else b64(policy[1]),
        )
    )


async def put_prekeys(request: web.Request) -> web.Response:
    upload = decode_json(body_of(request), PrekeyUpload)
    count = await operations.upload_prekeys(
        request.app[HUB], caller_of(request), [unb64(s) for s in upload.statements]
    )
    return json(StoredCount(count))


async def get_prekeys(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    ids = [i for i in request.query.get("ids", "").split(",") if i]
    if not 1 <= len(ids) <= 64:
        raise Problem("malformed", "ids must list 1 to 64 participant ids")
    for participant_id in ids:  # before the store: PostgreSQL refuses a NUL byte in text
        check_ident(participant_id, "participant id")
    found = await hub.store.prekeys(ids, hub.clock())
    return json(PrekeyListing(dict(found)))


# Cases.
def case_json(record: CaseRecord) -> CaseView:
    return CaseView(
        record.case_ref,
        record.state,
        record.owner,
        record.referrer,
        sorted(record.members),
        {ref: sorted(p) for ref, p in sorted(record.meetings.items())},
    )


async def open_case(request: web.Request) -> web.Response:
    body = decode_json(body_of(request), CaseOpen)
    record = await operations.open_case(
        request.app[HUB], caller_of(request), body.case_ref, body.members
    )
    return json(case_json(record), status=201)


async def get_case(request: web.Request) -> web.Response:
    caller = caller_of(request)
    record = await operations.existing_case(request.app[HUB], request.match_info["case_ref"])
    if caller.participant_id not in record.members and caller.entry.role.value != "coordinator":
        # Non-members learn nothing, not even existence: the answer for an unknown reference.
        raise Problem("not_found", operations.NO_SUCH_CASE)
    return json(case_json(record))


async def change_members(request: web.Request) -> web.Response:
    body = decode_json(body_of(request), MembersChange)
    record = await operations.change_members(
        request.app[HUB],
        caller_of(request),
        request.match_info["case_ref"],
        body.add,
        body.remove,
        body.owner,
    )
    return json(case_json(record))


async def record_meeting(request: web.Request) -> web.Response:
    body = decode_json(body_of(request), MeetingIn)
    record = await operations.record_meeting(
        request.app[HUB],
        caller_of(request),
        request.match_info["case_ref"],
        body.meeting_ref,
        body.present,
    )
    return json(case_json(record), status=201)


async def move_case(request: web.Request) -> web.Response:
    body = decode_json(body_of(request), TransitionIn)
    record = await operations.move_case(
        request.app[HUB], caller_of(request), request.match_info["case_ref"], body.to, body.reason
    )
    return json(case_json(record))


# Log.
async def checkpoint(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    size = await hub.log.catch_up()
    return web.Response(
        body=hub.log.checkpoint_note(size), content_type="text/plain", charset="utf-8"
    )


async def inclusion(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    current = await hub.log.catch_up()
    size = query_int(request, "size", current, low=1, high=current)
    index = query_int(request, "index", high=size - 1)
    return json(InclusionAnswer(index, size, hub.log.inclusion(index, size)))


async def consistency(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    current = await hub.log.catch_up()
    new = query_int(request, "new", current, low=0, high=current)
    old = query_int(request, "old", low=1, high=new)  # from the empty tree proves nothing
    return json(ConsistencyAnswer(old, new, hub.log.consistency(old, new)))


async def leaves(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    current = await hub.log.catch_up()
    start = query_int(request, "start", 0, high=current)
    end = query_int(
        request, "end", min(current, start + 1000), low=start, high=min(current, start + 1000)
    )
    rows = await hub.store.leaves(start, end)
    readable = await operations.leaf_reader(hub, caller_of(request))
    items: list[dict[str, object]] = []
    for index, hash_, data in rows:
        item: dict[str, object] = {"index": index, "hash": base64.b64encode(hash_).decode()}
        if data is not None and not await readable(data):
            item["data"], item["withheld"] = None, True
        else:
            item["data"] = None if data is None else base64.b64encode(data).decode()
        items.append(item)
    return json({"leaves": items})


# Operations.
async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return json({"status": "ok", "log_size": await hub.store.tree_size()})


async def readyz(request: web.Request) -> web.Response:
    """200 when the hub can do its work (its store commits, its log is loaded), else 503."""
    hub = request.app[HUB]
    problems = await hub.readiness.problems(hub.store, hub.clock())
    if problems:
        return json({"status": "not_ready", "problems": problems}, status=503)
    return json({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    now = hub.clock()
    counts = await hub.store.counts()
    counts["cases_purged"] = await hub.store.purged_cases(now)
    counts["connected_gateways"] = sum(len(s) for s in hub.push.sockets.values())
    counts["body_memory_bytes"] = hub.body_budget.held
    counts["streamed_body_bytes"] = hub.streamed_budget.held
    ages = {"deliveries_pending_by_age__age": await hub.store.pending_by_age(now)}
    text = generate_latest(request.app[METRICS].registry).decode()
    gauges = gauge_lines(counts, ages)
    return web.Response(text=text + gauges, content_type=CONTENT_TYPE_LATEST.split(";")[0])


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.post("/v1/envelopes", submit),
            web.post("/v1/envelopes/batch", submit_batch),
            web.get("/v1/inbox", inbox),
            web.post("/v1/inbox/ack", ack),
            web.get("/v1/deliveries/{message_id}", fetch_delivery),
            web.get("/v1/stream", stream),
            web.get("/v1/directory", directory),
            web.put("/v1/prekeys", put_prekeys),
            web.get("/v1/prekeys", get_prekeys),
            web.post("/v1/cases", open_case),
            web.get("/v1/cases/{case_ref}", get_case),
            web.post("/v1/cases/{case_ref}/members", change_members),
            web.post("/v1/cases/{case_ref}/meetings", record_meeting),
            web.post("/v1/cases/{case_ref}/transition", move_case),
            web.get("/v1/log/checkpoint", checkpoint),
            web.get("/v1/log/inclusion", inclusion),
            web.get("/v1/log/consistency", consistency),
            web.get("/v1/log/leaves", leaves),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics),
        ]
    )


__all__ = ["CALLER", "add_routes"]
