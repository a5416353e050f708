"""One access-log middleware for both services: a line per request, never content.

Each line names the method, the route pattern (never the path, which may hold identifiers),
the status and the time taken; a service adds its own fields (the hub: caller and purpose).
A client that went away before its answer is status 499, not an error of the service; such
lines are rate-limited, since a client decides how many there are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from .http_noise import CLIENT_GONE, LIMIT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (request, route pattern, status, seconds taken) -> the service's own fields for the line;
# also where a service counts the request in its metrics.
Fields = Callable[[web.Request, str, int, float], Mapping[str, object]]


class _Logger(Protocol):  # structlog's bound logger, as far as this module uses it
    def info(self, event: str, **fields: object) -> None: ...


def route_of(request: web.Request) -> str:
    """The route pattern that matched, e.g. ``/v1/cases/{case_ref}``; ``-`` for none."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"


def no_fields(*_: object) -> Mapping[str, object]:
    return {}


def access_middleware(log: _Logger, fields: Fields = no_fields) -> Middleware:
    """The middleware (outermost) writing ``log.info("request", ...)`` once per request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        except ConnectionError:
            status = CLIENT_GONE
            return web.Response(status=CLIENT_GONE)  # nobody reads it: aiohttp drops it quietly
        except asyncio.CancelledError:
            status = CLIENT_GONE
            raise
        else:
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(request)
            extra = fields(request, route, status, elapsed)
            if status != CLIENT_GONE or LIMIT.allow("client_gone"):
                log.info(
                    "request",
                    method=request.method,
                    route=route,
                    status=status,
                    **extra,
                    ms=round(elapsed * 1000, 2),
                )

    return middleware
