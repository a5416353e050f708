"""The local HTTP API: the embedding API's operations for software not written in Python.

``create_api(gateway, token)`` builds the aiohttp application that ``livcr gateway serve`` runs on
localhost or a Unix socket (specs/gateway-api.yaml is its contract). Every request except
``/healthz`` and ``/readyz`` carries ``Authorization: Bearer <token>`` and a Host naming the
listener; JSON in, JSON out; every refusal is a problem document whose ``code`` is a library
error code, one of this API's own, or, for a refusal by the hub, the hub's own code with the
hub's own status. ``POST /v1/messages`` honours an ``Idempotency-Key`` header.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from livcr_exchange.envelope import Cosignature
from livcr_exchange.errors import Malformed
from livcr_exchange.purposes import decode_body
from livcr_exchange.service.problems import Problem, problem_middleware

from .api_documents import document_routes, uploads_named
from .api_guards import (
    GUARD,
    Guard,
    access_middleware,
    auth_middleware,
    gateway_errors_middleware,
    host_middleware,
    listener_hosts,
)
from .api_inputs import (
    CaseOpenIn,
    CosignatureIn,
    CosignIn,
    MeetingIn,
    MembersIn,
    SendIn,
    TransitionIn,
    case_ref_of,
    common_deadline,
    query_ident,
    query_int,
    query_seconds,
    read_json,
    reply,
)
from .api_long_polls import LONG_POLLS, long_polls, wait_for_arrival
from .api_outbox import (
    IDEMPOTENCY,
    IdempotencyIn,
    idempotency_of,
    outbox_routes,
    receipt_json,
    remembered,
)
from .errors import GatewayHalted, SendTimeout
from .facade import Gateway
from .metrics import exposition
from .submission import tagged_body

# Limits of the local API (specs/gateway-api.yaml repeats each of them).
MAX_API_REQUEST_BYTES = 4 * 1024 * 1024  # the largest purpose body is well under 1 MiB
MAX_LONG_POLL_SECONDS = 30.0
MAX_PAGE = 1000  # messages per GET /v1/messages
DEFAULT_PAGE = 100
MAX_CURSOR = 2**63 - 1  # a dossier seq is a SQLite integer
SEND_TIMEOUT_SECONDS = 30.0  # then 202: the message stays queued and will still go
MIN_TOKEN_LENGTH = 16

log = structlog.get_logger("livcr.gateway.api")


@dataclass(frozen=True)
class APISettings:
    long_poll_cap: float  # a wait asked for is served up to this many seconds
    send_timeout: float


GATEWAY = web.AppKey("gateway", Gateway)
SETTINGS = web.AppKey("settings", APISettings)


def not_halted(gateway: Gateway) -> None:
    if gateway.halted is not None:
        raise GatewayHalted(gateway.halted)


# Handlers.
async def healthz(_request: web.Request) -> web.Response:
    return reply({"status": "ok"})


async def status(request: web.Request) -> web.Response:
    return reply(await request.app[GATEWAY].status())


async def readyz(request: web.Request) -> web.Response:
    """200 once the gateway is connected to the hub and trusts it; 503 until then."""
    status = await request.app[GATEWAY].status()
    return reply(
        {"ready": status["ready"], "degraded": status["degraded"]}, 200 if status["ready"] else 503
    )


async def metrics(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    restarts = {name: health.restarts for name, health in gateway.supervisor.health.items()}
    text = exposition(await gateway.status(), restarts, request.app[LONG_POLLS].waiting)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def cosignature_of(item: CosignatureIn) -> Cosignature:
    try:
        signature = base64.b64decode(item.signature, validate=True)
    except binascii.Error as exc:  # the pattern admits only valid base64; belt and braces
        raise Malformed("co-signature is not standard base64") from exc
    return Cosignature(item.signer_id, bytes.fromhex(item.signer_key_id), signature)


async def send(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    not_halted(gateway)
    idempotency = idempotency_of(request, await request.read())
    if (answer := await remembered(gateway, idempotency)) is not None:
        return answer
    running = request.app[IDEMPOTENCY].running
    if idempotency is not None:
        if idempotency[0] in running:
            raise Problem("idempotency_key_in_use", "a request with this key is running", 409)
        running.add(idempotency[0])
    try:
        return await _send(request, gateway, idempotency)
    finally:
        if idempotency is not None:
            running.discard(idempotency[0])


async def _send(request: web.Request, gateway: Gateway, idempotency: IdempotencyIn) -> web.Response:
    message = await read_json(request, SendIn)
    case_ref = message.case_ref
    if case_ref is None:
        if message.purpose != "aanmelding":
            raise Malformed("case_ref is required; only a referral (aanmelding) opens a case")
        case_ref = gateway.cases.new_case_ref()
    # Roles before the body: a sender that may not use the purpose is told so first.
    gateway.check_sendable(message.purpose, case_ref, message.to, message.meeting_ref)
    # Decoded and re-encoded canonically, so that every gateway co-signs the same bytes; a body
    # that leaves out its purpose tag gets it here.
    body = decode_body(message.purpose, tagged_body(message.purpose, bytes(message.body)))
    try:
        outcome = await gateway.send(
            case_ref,
            message.purpose,
            to=message.to,
            body=body,
            meeting_ref=message.meeting_ref,
            cosignatures=[cosignature_of(c) for c in message.cosignatures],
            cosign_deadline=common_deadline(message.cosignatures),
            wait=message.wait,
            timeout=request.app[SETTINGS].send_timeout,
            idempotency=idempotency,
            attachments=await uploads_named(gateway, message.attachments),
        )
    except SendTimeout as exc:
        return reply(
            {"message_id": exc.message_id.hex(), "state": "queued", "case_ref": case_ref}, 202
        )
    if isinstance(outcome, bytes):
        return reply({"message_id": outcome.hex(), "state": "queued", "case_ref": case_ref}, 202)
    return reply({**receipt_json(outcome), "case_ref": case_ref}, 201)


def message_json(record: dict[str, object]) -> dict[str, object]:
    return {
        "seq": record["seq"],
        "message_id": record["message_id"],
        "case_ref": record["case_ref"],
        "purpose": record["purpose"],
        "sender_id": record["sender"],
        "recipients": record["recipients"],
        "meeting_ref": record["meeting_ref"],
        "logged_at": record["logged_at"],
        "body": record["body"],
        "attachments": record["attachments"],
        "deleted_at": record["deleted_at"],
    }


async def messages(request: web.Request) -> web.Response:
    """Received messages after a cursor; with ``wait``, a long poll until one arrives."""
    gateway = request.app[GATEWAY]
    after = query_int(request, "after", 0, 0, MAX_CURSOR)
    limit = query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    wait = min(
        query_seconds(request, "wait", MAX_LONG_POLL_SECONDS),
        request.app[SETTINGS].long_poll_cap,
    )
    arrival = gateway.arrival()  # taken before reading: nothing stored in between is missed
    records = await gateway.received(after=after, limit=limit)
    if not records and wait > 0:
        await wait_for_arrival(request.app, arrival, wait)
        records = await gateway.received(after=after, limit=limit)
    return reply(
        {
            "messages": [message_json(r) for r in records],
            "next_after": records[-1]["seq"] if records else after,
        }
    )


async def dossier(request: web.Request) -> web.Response:
    records = await request.app[GATEWAY].dossier(
        case_ref=query_ident(request, "case_ref"), purpose=query_ident(request, "purpose")
    )
    return reply({"records": records})


async def export(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    not_halted(gateway)
    return reply(await gateway.export(case_ref))


async def erase(request: web.Request) -> web.Response:
    erased = await request.app[GATEWAY].erase_case(case_ref_of(request))
    return reply({"erased": len(erased)})


async def open_case(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    opened = await read_json(request, CaseOpenIn)
    not_halted(gateway)
    return reply({"case_ref": await gateway.cases.open_case(opened.members, opened.case_ref)}, 201)


async def get_case(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    not_halted(gateway)
    return reply(await gateway.cases.case(case_ref))


async def change_members(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    change = await read_json(request, MembersIn)
    not_halted(gateway)
    case = await gateway.cases.change_members(
        case_ref, add=change.add, remove=change.remove, owner=change.owner
    )
    return reply(case)


async def record_meeting(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    meeting = await read_json(request, MeetingIn)
    not_halted(gateway)
    return reply(
        await gateway.cases.record_meeting(case_ref, meeting.meeting_ref, meeting.present), 201
    )


async def move_case(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    transition = await read_json(request, TransitionIn)
    not_halted(gateway)
    return reply(await gateway.cases.move_case(case_ref, transition.to, transition.reason))


async def cosign(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    asked = await read_json(request, CosignIn)
    fiche = "terugkoppelingsfiche"
    body = decode_body(fiche, tagged_body(fiche, bytes(asked.body)))
    signature = gateway.cosign(
        asked.case_ref, asked.meeting_ref, body, to=asked.to, deadline=asked.deadline
    )
    return reply(
        {
            "signer_id": signature.signer_id,
            "signer_key_id": signature.signer_key_id.hex(),
            "signature": base64.b64encode(signature.signature).decode("ascii"),
            "deadline": asked.deadline,
        }
    )


ROUTES = [
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
    web.get("/metrics", metrics),
    web.get("/v1/status", status),
    web.post("/v1/messages", send),
    web.get("/v1/messages", messages),
    web.get("/v1/dossier", dossier),
    web.post("/v1/cases", open_case),
    web.get("/v1/cases/{case_ref}", get_case),
    web.get("/v1/cases/{case_ref}/export", export),
    web.post("/v1/cases/{case_ref}/erase", erase),
    web.post("/v1/cases/{case_ref}/members", change_members),
    web.post("/v1/cases/{case_ref}/meetings", record_meeting),
    web.post("/v1/cases/{case_ref}/transition", move_case),
    web.post("/v1/cosignatures", cosign),
]


def create_api(
    gateway: Gateway,
    token: str | bytes,
    *,
    long_poll_cap: float = MAX_LONG_POLL_SECONDS,
    send_timeout: float = SEND_TIMEOUT_SECONDS,
) -> web.Application:
    """The local API application for an open ``gateway``, guarded by ``token``.

    ``long_poll_cap`` shortens long polls (tests); a request may still ask for up to 30 s.

    Raises:
        ValueError: the token is shorter than MIN_TOKEN_LENGTH characters.
    """
    secret = (token.encode("utf-8") if isinstance(token, str) else token).strip()
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the API token must be at least {MIN_TOKEN_LENGTH} characters")
    app = web.Application(
        client_max_size=MAX_API_REQUEST_BYTES,
        middlewares=[
            access_middleware,
            problem_middleware,
            host_middleware,
            auth_middleware,
            gateway_errors_middleware,
        ],
    )
    app[GATEWAY] = gateway
    app[GUARD] = Guard(secret)
    app[SETTINGS] = APISettings(long_poll_cap, send_timeout)
    outbox_routes(app, gateway)
    document_routes(app, gateway)
    long_polls(app)
    app.router.add_routes(ROUTES)
    return app


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0, unix_socket: str = ""
) -> AsyncIterator[str]:
    """Serve ``app`` on host:port or a Unix socket (mode 0600); yield its URL or socket path."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        if unix_socket:
            site: web.BaseSite = web.UnixSite(runner, unix_socket)
            previous = os.umask(0o177)  # the socket is born 0600: only this user may connect
            try:
                await site.start()
            finally:
                os.umask(previous)
            Path(unix_socket).chmod(0o600)
            yield unix_socket
        else:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            app[GUARD].hosts = listener_hosts(host, bound_port) | listener_hosts(
                bound_host, bound_port
            )
            yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
        if unix_socket:
            Path(unix_socket).unlink(missing_ok=True)
