"""The typed keys of the hub's application and requests (its metrics among them): what the app
factory (``app``) and the handlers (``routes``) share, so neither imports the other's module."""

from __future__ import annotations

from aiohttp import web

from livcr_exchange.request_auth import AuthenticatedRequest

from .metrics import HubMetrics
from .state import Hub

CALLER = web.RequestKey("caller", AuthenticatedRequest)  # set by auth_middleware
AUDITED = web.RequestKey("audited", bool)  # a handler that audits its own refusals sets it
PURPOSE = web.RequestKey("purpose", str)  # a submitted envelope's purpose tag, for the log
REFUSED = web.RequestKey("refused", str)  # the code of a refusal, for the metrics


HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", HubMetrics)


def caller_of(request: web.Request) -> AuthenticatedRequest:
    return request[CALLER]
