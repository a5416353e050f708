"""The local HTTP API: the embedding API's operations for software not written in Python.

``create_api(gateway, token)`` builds the aiohttp application that ``livcr gateway serve`` runs on
localhost or a Unix socket (specs/gateway-api.yaml is its contract). Every request except
``/healthz`` carries ``Authorization: Bearer <token>``; JSON in, JSON out; every refusal is a
problem document whose ``code`` is a library error code, one of this API's own
(``unauthenticated``, ``not_found``, ``halted``, ``hub_unavailable``) or, for a refusal by the
hub, the hub's own code with the hub's own status.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import aiohttp
import msgspec
import structlog
from aiohttp import web

from livcr_exchange.bodies import Ident
from livcr_exchange.constants import MAX_COSIGNERS, MAX_RECIPIENTS
from livcr_exchange.envelope import Cosignature
from livcr_exchange.errors import BodySchemaViolation, LivcrError, Malformed
from livcr_exchange.purposes import decode_body
from livcr_exchange.service.hub_client import HubRefused
from livcr_exchange.service.problems import Problem, problem_middleware, problem_response
from livcr_exchange.wire import check_ident

from .core import Gateway, GatewayHalted, HubUnavailable, Receipt, SendRefused, SendTimeout
from .submission import PurposeTagMismatch, tagged_body
from .trust import TrustFailure

# Limits of the local API (specs/gateway-api.yaml repeats each of them).
MAX_API_REQUEST_BYTES = 4 * 1024 * 1024  # the largest purpose body is well under 1 MiB
MAX_LONG_POLL_SECONDS = 30.0
MAX_PAGE = 1000  # messages per GET /v1/messages
DEFAULT_PAGE = 100
MAX_CURSOR = 2**63 - 1  # a dossier seq is a SQLite integer
SEND_TIMEOUT_SECONDS = 30.0  # then 202: the message stays queued and will still go
MIN_TOKEN_LENGTH = 16
PUBLIC_PATHS = frozenset({"/healthz"})

log = structlog.get_logger("livcr.gateway.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


@dataclass(frozen=True)
class APISettings:
    token: bytes
    long_poll_cap: float  # a wait asked for is served up to this many seconds
    send_timeout: float


GATEWAY = web.AppKey("gateway", Gateway)
SETTINGS = web.AppKey("settings", APISettings)
STOPPING = web.AppKey("stopping", asyncio.Event)  # set on shutdown: long polls return at once

# Request bodies: strict, unknown fields rejected, every list and string bounded.
KeyIdHex = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]
SignatureB64 = Annotated[str, msgspec.Meta(pattern=r"\A[A-Za-z0-9+/]{86}==\Z")]
Recipients = Annotated[tuple[Ident, ...], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]
Members = Annotated[tuple[Ident, ...], msgspec.Meta(max_length=MAX_RECIPIENTS)]
Present = Annotated[tuple[Ident, ...], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]


class CosignatureIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    signer_id: Ident
    signer_key_id: KeyIdHex
    signature: SignatureB64


class SendIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    purpose: Ident
    to: Recipients
    body: msgspec.Raw  # checked against the purpose's schema by the library (422 if not)
    # Omitted on a referral (aanmelding): the gateway mints the new case's reference.
    case_ref: Ident | None = None
    meeting_ref: Ident | None = None
    cosignatures: Annotated[tuple[CosignatureIn, ...], msgspec.Meta(max_length=MAX_COSIGNERS)] = ()
    wait: bool = True


class CaseOpenIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    members: Members
    case_ref: Ident | None = None


class MembersIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    add: Members = ()
    remove: Members = ()
    owner: Ident | None = None


class MeetingIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    meeting_ref: Ident
    present: Present


class TransitionIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    to: Ident
    reason: Ident | None = None


class CosignIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    case_ref: Ident
    meeting_ref: Ident
    body: msgspec.Raw


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind)
    for kind in (SendIn, CaseOpenIn, MembersIn, MeetingIn, TransitionIn, CosignIn)
}


async def read_json(request: web.Request, kind: type[T]) -> T:
    """Decode the request body strictly. Raises Problem ``malformed`` (400)."""
    try:
        decoded: T = _DECODERS[kind].decode(await request.read())
    except msgspec.DecodeError as exc:
        raise Problem("malformed", f"request body: {exc}") from exc
    return decoded


def reply(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def case_ref_of(request: web.Request) -> str:
    """The path's case reference. Raises Malformed (400)."""
    return check_ident(request.match_info["case_ref"], "case reference")


def not_halted(gateway: Gateway) -> None:
    if gateway.halted is not None:
        raise GatewayHalted(gateway.halted)


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 20) or not low <= int(text) <= high:
        raise Problem("malformed", f"query parameter {name} must be an integer in [{low}, {high}]")
    return int(text)


def query_seconds(request: web.Request, name: str, high: float) -> float:
    text = request.query.get(name)
    if text is None:
        return 0.0
    try:
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not 0 <= value <= high:  # also refuses nan
        raise Problem("malformed", f"query parameter {name} must be a number in [0, {high:g}]")
    return value


def query_ident(request: web.Request, name: str) -> str | None:
    text = request.query.get(name)
    return None if text is None else check_ident(text, name)


# Middlewares.
@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One log line per request: method, route pattern, status, time. No identifier, no content."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        status = exc.status
        raise
    else:
        status = response.status
        return response
    finally:
        resource = request.match_info.route.resource
        log.info(
            "request",
            method=request.method,
            route=resource.canonical if resource is not None else "-",
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every path but /healthz needs the bearer token (compared in constant time)."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    token = request.app[SETTINGS].token
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode("utf-8", "replace"), token
    ):
        response = problem_response(
            "unauthenticated", "a valid bearer token is required (the gateway's api.token)", 401
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="livcr-gateway"'
        return response
    return await handler(request)


@web.middleware
async def gateway_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The gateway's own refusals as Problems; the shared problem middleware renders them.

    Library errors pass through unchanged (the shared middleware maps their codes), except a
    body that breaks its purpose's schema: 422 here, since the request itself was well formed.
    """
    try:
        return await handler(request)
    except BodySchemaViolation as exc:
        raise Problem(exc.code, exc.wire_reason, 422) from exc
    except PurposeTagMismatch as exc:
        raise Problem(exc.code, str(exc), 422) from exc
    except (GatewayHalted, TrustFailure) as exc:
        raise Problem("halted", f"the gateway stopped trusting the hub: {exc}", 503) from exc
    except SendRefused as exc:
        raise Problem(exc.code, exc.detail, exc.status) from exc
    except HubRefused as exc:
        raise Problem(exc.code, exc.detail, exc.status) from exc
    except HubUnavailable as exc:
        raise Problem("hub_unavailable", str(exc), 503) from exc
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        raise Problem(
            "hub_unavailable", f"the hub did not answer: {type(exc).__name__}", 503
        ) from exc
    except (web.HTTPException, LivcrError, Problem):
        raise
    except Exception as exc:
        log.exception(
            "request failed",
            route=request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "-",
        )
        raise Problem("internal_error", "the gateway failed; its log says why", 500) from exc


# Handlers.
async def healthz(_request: web.Request) -> web.Response:
    return reply({"status": "ok"})


async def status(request: web.Request) -> web.Response:
    return reply(await request.app[GATEWAY].status())


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


def cosignature_of(item: CosignatureIn) -> Cosignature:
    try:
        signature = base64.b64decode(item.signature, validate=True)
    except binascii.Error as exc:  # the pattern admits only valid base64; belt and braces
        raise Malformed("co-signature is not standard base64") from exc
    return Cosignature(item.signer_id, bytes.fromhex(item.signer_key_id), signature)


async def send(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    not_halted(gateway)
    message = await read_json(request, SendIn)
    case_ref = message.case_ref
    if case_ref is None:
        if message.purpose != "aanmelding":
            raise Malformed("case_ref is required; only a referral (aanmelding) opens a case")
        case_ref = gateway.new_case_ref()
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
            wait=message.wait,
            timeout=request.app[SETTINGS].send_timeout,
        )
    except SendTimeout as exc:
        return reply(
            {"message_id": exc.message_id.hex(), "state": "queued", "case_ref": case_ref}, 202
        )
    if isinstance(outcome, bytes):
        return reply({"message_id": outcome.hex(), "state": "queued", "case_ref": case_ref}, 202)
    return reply({**receipt_json(outcome), "case_ref": case_ref}, 201)


def message_json(record: dict[str, Any]) -> dict[str, object]:
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
        await first_of(arrival, request.app[STOPPING], wait)
        records = await gateway.received(after=after, limit=limit)
    return reply(
        {
            "messages": [message_json(r) for r in records],
            "next_after": records[-1]["seq"] if records else after,
        }
    )


async def first_of(one: asyncio.Event, other: asyncio.Event, timeout: float) -> None:
    """Wait until either event is set, or ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in (one, other)]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


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
    return reply({"case_ref": await gateway.open_case(opened.members, opened.case_ref)}, 201)


async def change_members(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    change = await read_json(request, MembersIn)
    not_halted(gateway)
    case = await gateway.change_members(
        case_ref, add=change.add, remove=change.remove, owner=change.owner
    )
    return reply(case)


async def record_meeting(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    meeting = await read_json(request, MeetingIn)
    not_halted(gateway)
    return reply(await gateway.record_meeting(case_ref, meeting.meeting_ref, meeting.present), 201)


async def move_case(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    case_ref = case_ref_of(request)
    transition = await read_json(request, TransitionIn)
    not_halted(gateway)
    return reply(await gateway.move_case(case_ref, transition.to, transition.reason))


async def cosign(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    asked = await read_json(request, CosignIn)
    fiche = "terugkoppelingsfiche"
    body = decode_body(fiche, tagged_body(fiche, bytes(asked.body)))
    signature = gateway.cosign(asked.case_ref, asked.meeting_ref, body)
    return reply(
        {
            "signer_id": signature.signer_id,
            "signer_key_id": signature.signer_key_id.hex(),
            "signature": base64.b64encode(signature.signature).decode("ascii"),
        }
    )


async def _wake_long_polls(app: web.Application) -> None:
    app[STOPPING].set()


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
            auth_middleware,
            gateway_errors_middleware,
        ],
    )
    app[GATEWAY] = gateway
    app[SETTINGS] = APISettings(secret, long_poll_cap, send_timeout)
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_wake_long_polls)
    app.router.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/v1/status", status),
            web.post("/v1/messages", send),
            web.get("/v1/messages", messages),
            web.get("/v1/dossier", dossier),
            web.post("/v1/cases", open_case),
            web.get("/v1/cases/{case_ref}/export", export),
            web.post("/v1/cases/{case_ref}/erase", erase),
            web.post("/v1/cases/{case_ref}/members", change_members),
            web.post("/v1/cases/{case_ref}/meetings", record_meeting),
            web.post("/v1/cases/{case_ref}/transition", move_case),
            web.post("/v1/cosignatures", cosign),
        ]
    )
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
            yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
        if unix_socket:
            Path(unix_socket).unlink(missing_ok=True)
