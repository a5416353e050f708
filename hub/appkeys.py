"""The typed keys of the hub's application and requests, and its metrics: what the application
factory (``app``) and the handlers (``routes``) share, so neither imports the other's module."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from livcr_exchange.request_auth import AuthenticatedRequest

from .state import Hub

CALLER = web.RequestKey("caller", AuthenticatedRequest)  # set by auth_middleware
AUDITED = web.RequestKey("audited", bool)  # a handler that audits its own refusals sets it
PURPOSE = web.RequestKey("purpose", str)  # a submitted envelope's purpose tag, for the log


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "livcr_hub_requests",
            "Requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "livcr_hub_request_seconds", "Request latency", ["route"], registry=self.registry
        )
        self.envelopes = Counter(
            "livcr_hub_envelopes_accepted",
            "Envelopes accepted",
            ["purpose"],
            registry=self.registry,
        )
        # Children bound once: ``labels()`` takes the metric's lock and builds a key per call,
        # and every request would pay that three times. The metrics keep a child per label set
        # for good anyway, so holding them here adds nothing that grows.
        self.accepted = self.envelopes.labels("any")
        self._per_route: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one request of ``route`` answered with ``status`` and record its latency."""
        children = self._per_route.get((route, status))
        if children is None:
            children = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._per_route[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", HubMetrics)


def caller_of(request: web.Request) -> AuthenticatedRequest:
    return request[CALLER]
