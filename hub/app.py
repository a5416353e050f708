"""The hub's aiohttp application: factory, typed app keys, middlewares, resources.

``create_app`` wires a ``Hub`` (store, log, clock, randomness) into routes. Resources (the store,
the checkpoint and expiry tasks) open and close in ``cleanup_ctx``. Every /v1 request except the
public checkpoint is authenticated by its RFC 9421-style signature before a handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from livcr_exchange.directory import Directory
from livcr_exchange.hashing import RandomSource
from livcr_exchange.keys import IdentityKey
from livcr_exchange.request_auth import AuthenticatedRequest, RequestTarget, verify_request
from livcr_exchange.service.problems import problem_middleware

from .config import HubConfig
from .log import TransparencyLog
from .state import Clock, Hub
from .store.base import HubStore

CALLER = "livcr.caller"  # request key: AuthenticatedRequest
PUBLIC_PATHS = frozenset({"/healthz", "/metrics", "/v1/log/checkpoint"})
EXPIRY_BATCH = 500  # rows per round: the purge never holds the store for long

access_log = structlog.get_logger("livcr.hub.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", HubMetrics)


def system_clock() -> int:
    return int(time.time())


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One log line per request: who, which route, purpose, outcome. Never content."""
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
        route = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "-"
        )
        caller = request.get(CALLER)
        elapsed = time.perf_counter() - started
        metrics = request.app[METRICS]
        metrics.requests.labels(route, str(status)).inc()
        metrics.latency.labels(route).observe(elapsed)
        access_log.info(
            "request",
            method=request.method,
            route=route,
            status=status,
            participant=caller.participant_id if caller else None,
            purpose=request.get("livcr.purpose"),
            ms=round(elapsed * 1000, 2),
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify the request signature against the directory (spec §11.1) before any handler."""
    if request.path in PUBLIC_PATHS or not request.path.startswith("/v1/"):
        return await handler(request)
    hub = request.app[HUB]
    body = await request.read()
    target = RequestTarget(request.method, request.path, request.query_string, body)
    directory = await hub.current_directory()
    request[CALLER] = verify_request(
        target, request.headers, directory, now=hub.clock(), nonces=hub.nonces
    )
    return await handler(request)


async def purge_due_cases(hub: Hub) -> int:
    """Retention: delete envelopes and leaf data of closed cases whose period is over (§10.5).

    Works in bounded batches so it can run while the hub serves; leaf hashes stay, so the tree
    and every checkpoint remain verifiable.
    """
    now = hub.clock()
    removed = 0
    for case in await hub.store.cases():
        if case.purge_after is not None and case.purge_after <= now:
            removed += await hub.store.purge_case(case.case_ref, EXPIRY_BATCH)
    return removed


def caller_of(request: web.Request) -> AuthenticatedRequest:
    caller: AuthenticatedRequest = request[CALLER]
    return caller


def create_app(
    config: HubConfig,
    *,
    store: HubStore,
    log_key: IdentityKey,
    clock: Clock = system_clock,
    random: RandomSource = os.urandom,
) -> web.Application:
    """Build the hub application. The store is opened and closed with the app."""
    from .routes import add_routes  # noqa: PLC0415  (routes import this module's keys)

    app = web.Application(
        client_max_size=config.hub.max_request_bytes,
        middlewares=[access_middleware, problem_middleware, auth_middleware],
    )
    root = config.root_key
    hub = Hub(
        config=config,
        store=store,
        log=TransparencyLog(store, config.origin, log_key),
        clock=clock,
        random=random,
        root=root,
        directory=Directory(config.hub.cell_id, root),
    )
    app[HUB] = hub
    app[METRICS] = HubMetrics()
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_background_ctx)
    add_routes(app)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    await hub.store.open()
    await hub.refresh_directory()
    await hub.log.catch_up()
    yield
    await hub.push.close_all()
    with contextlib.suppress(Exception):
        await hub.log.save_checkpoint()
    await hub.store.close()


async def _background_ctx(app: web.Application) -> AsyncIterator[None]:
    """Periodic checkpoints and expiry, while the app runs."""
    hub = app[HUB]

    async def loop() -> None:
        while True:
            await asyncio.sleep(hub.config.hub.checkpoint_interval_seconds)
            try:
                await hub.log.save_checkpoint()
                await hub.store.delete_expired(hub.clock(), EXPIRY_BATCH)
                await purge_due_cases(hub)
            except Exception:  # noqa: BLE001  (a failed round is logged; the next one retries)
                access_log.exception("background round failed")

    task = asyncio.create_task(loop(), name="hub-background")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
