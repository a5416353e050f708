"""One error middleware for both services: library errors become RFC 9457 problem+json.

The response names the error ``code`` (stable, from spec §13) and a reason; for cryptographic
failures the reason is the coarse one, so the answer is no oracle. Our own log line keeps the
precise message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import structlog
from aiohttp import web

from ..errors import LivcrError

PROBLEM_TYPE = "application/problem+json"
log = structlog.get_logger("livcr.http")

# HTTP status per error family code (spec §13); anything unlisted is 400.
STATUS_BY_CODE: dict[str, int] = {
    "oversized": 413,
    "unknown_sender": 403,
    "key_revoked": 403,
    "key_not_valid": 403,
    "bad_signature": 401,
    "purpose_not_allowed": 403,
    "recipient_not_allowed": 403,
    "case_state_forbids": 409,
    "illegal_transition": 409,
    "replayed": 409,
    "cosignature_invalid": 403,
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "unauthenticated": 401,
    "store_unavailable": 503,
    "range_not_satisfiable": 416,
}


class Problem(Exception):
    """A refusal with a stable ``code``, a ``detail`` for people and an HTTP ``status``: what a
    service answers (and, as ``HubRefused``, what a client of the hub receives) besides the
    library's own errors. The one class for every such refusal of hub and gateway."""

    def __init__(self, code: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status or STATUS_BY_CODE.get(code, 400)


def problem_response(
    code: str,
    detail: str,
    status: int,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = {
        "type": f"urn:livcr:error:{code}",
        "title": code,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type=PROBLEM_TYPE, headers=headers
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LivcrError as exc:
        status = STATUS_BY_CODE.get(exc.code, 400)
        log.info("refused", code=exc.code, reason=str(exc), path=request.path, status=status)
        return problem_response(exc.code, exc.wire_reason, status)
    except Problem as exc:
        log.info("refused", code=exc.code, reason=exc.detail, path=request.path, status=exc.status)
        return problem_response(exc.code, exc.detail, exc.status)
    except web.HTTPRequestEntityTooLarge as exc:
        return problem_response("oversized", exc.text or "request body too large", 413)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != PROBLEM_TYPE:
            code = "not_found" if exc.status == 404 else "http_error"
            # Keep what the status needs (Allow on a 405), not the old body's framing.
            kept = {
                name: value
                for name, value in exc.headers.items()
                if name.lower() not in {"content-type", "content-length"}
            }
            return problem_response(code, exc.reason, exc.status, headers=kept)
        raise
