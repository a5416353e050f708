"""The local API's middlewares: the Host check, the bearer token, and the gateway's refusals.

The Host check answers 421 to a request whose Host is not the listener's (a page that rebound
its own name to 127.0.0.1 cannot reach the API). A client that went away is logged as such,
never blamed on the hub.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import structlog
from aiohttp import web

from livcr_exchange.errors import (
    AttachmentError,
    AttachmentTooLarge,
    BodySchemaViolation,
    LivcrError,
)
from livcr_exchange.service.access_log import access_middleware as shared_access_middleware
from livcr_exchange.service.access_log import route_of
from livcr_exchange.service.hub_client import HubAnswerInvalid
from livcr_exchange.service.problems import Problem, problem_response

from .errors import GatewayHalted, HubUnavailable
from .submission import PurposeTagMismatch
from .trust import TrustFailure

log = structlog.get_logger("livcr.gateway.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
MISDIRECTED = 421


@dataclass
class Guard:
    """What the middlewares check against: the token, and the Host values of the listener
    (empty: a Unix socket, where a browser cannot rebind a name)."""

    token: bytes
    hosts: set[str] = field(default_factory=set)


GUARD = web.AppKey("guard", Guard)


def listener_hosts(host: str, port: int) -> set[str]:
    """The Host values a client of ``host:port`` sends (the loopback names included)."""
    names = {host, f"[{host}]" if ":" in host else host}
    if host in {"127.0.0.1", "::1", "localhost"}:
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return {f"{name}:{port}" for name in names} | ({*names} if port == 80 else set())


access_middleware = shared_access_middleware(log)


@web.middleware
async def host_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """421 for a Host that is not the listener's."""
    hosts = request.app[GUARD].hosts
    if hosts and request.host.lower() not in hosts:
        return problem_response(
            "misdirected_request",
            "the Host header does not name this gateway's listener",
            MISDIRECTED,
        )
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every path but /healthz and /readyz needs the bearer token (compared in constant time)."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    token = request.app[GUARD].token
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode("utf-8", "replace"), token
    ):
        response = problem_response(
            "unauthenticated", "a valid bearer token is required (the gateway's api.token)", 401
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="livcr-gateway"'
        return response
    return await handler(request)


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


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
    except AttachmentTooLarge as exc:
        raise Problem(exc.code, str(exc), 413) from exc
    except AttachmentError as exc:  # a document the purpose or its content refuses
        raise Problem(exc.code, str(exc), 422) from exc
    except RecursionError as exc:
        raise Problem("malformed", "the request nests too deeply", 400) from exc
    except (GatewayHalted, TrustFailure) as exc:
        raise Problem("halted", f"the gateway stopped trusting the hub: {exc}", 503) from exc
    except HubAnswerInvalid as exc:
        raise Problem(
            "hub_unavailable", f"the hub's answer broke the contract: {exc}", 503
        ) from exc
    except HubUnavailable as exc:
        raise Problem("hub_unavailable", str(exc), 503) from exc
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        if client_gone(request):
            log.info("the client went away", route=route_of(request), error=type(exc).__name__)
            raise
        raise Problem(
            "hub_unavailable", f"the hub did not answer: {type(exc).__name__}", 503
        ) from exc
    except (web.HTTPException, LivcrError, Problem):
        raise
    except Exception as exc:
        log.exception("request failed", route=route_of(request))
        raise Problem("internal_error", "the gateway failed; its log says why", 500) from exc
