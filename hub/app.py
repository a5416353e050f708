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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

from livcr_exchange.directory import Directory
from livcr_exchange.errors import LivcrError
from livcr_exchange.hashing import RandomSource
from livcr_exchange.keys import IdentityKey
from livcr_exchange.service.access_log import access_middleware as shared_access_middleware
from livcr_exchange.service.problems import Problem, problem_middleware, problem_response

from .admission import BODY, body_cap, declared_length, held_body, streams
from .appkeys import AUDITED, CALLER, HUB, METRICS, PURPOSE, REFUSED
from .authn import check_headers, verify_caller
from .config import HubConfig
from .log import TransparencyLog
from .metrics import HubMetrics
from .operations import delivery_frame, record_refusal
from .routes import add_routes
from .state import DIRECTORY_REFRESH_SECONDS, Clock, Hub
from .store.base import DeliveryNotice, HubStore, StoreError
from .witnessing import install_witnessing

PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/v1/log/checkpoint", "/v1/log/cosigned"}
)
EXPIRY_BATCH = 500  # rows per round: the purge never holds the store for long
PURGE_ROUND_SECONDS = 0.5  # retention work per background round, in batches of EXPIRY_BATCH

access_log = structlog.get_logger("livcr.hub.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def system_clock() -> int:
    return int(time.time())


def _request_fields(
    request: web.Request, route: str, status: int, elapsed: float
) -> dict[str, object]:
    """Counts the request in the metrics; its log line names the caller and the purpose."""
    metrics = request.app[METRICS]
    metrics.observe(route, status, elapsed)
    if (code := request.get(REFUSED)) is not None:
        metrics.refused(code)
    caller = request.get(CALLER)
    return {
        "participant": caller.participant_id if caller else None,
        "purpose": request.get(PURPOSE),
    }


access_middleware = shared_access_middleware(access_log, _request_fields)


@web.middleware
async def refusal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Note a refusal's code for the metrics (problem_middleware, outside, answers it)."""
    try:
        return await handler(request)
    except (LivcrError, Problem) as exc:
        request[REFUSED] = exc.code
        raise


@web.middleware
async def store_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A failing store is not the client's fault: 503 ``store_unavailable``, never a 500."""
    try:
        return await handler(request)
    except StoreError as exc:
        access_log.error("store unavailable", error=str(exc))
        request.app[HUB].readiness.store_failed()
        request[REFUSED] = "store_unavailable"
        return problem_response("store_unavailable", "the hub's store is unavailable", 503)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify the request signature against the directory (spec §11.1) before any handler.

    What the headers alone show (their form, the participant, its key's validity) is checked
    before a byte of the body is read; the body is then read under its route's cap, the memory
    budget and a deadline (hub/admission.py), and the signature over it checked last.

    A refusal of an authenticated request is audited with one ``refusal`` leaf (spec §10),
    unless the handler audited it itself (``AUDITED``: envelope submissions, which name the
    envelope's message id).
    """
    if request.path in PUBLIC_PATHS or not request.path.startswith("/v1/"):
        return await handler(request)
    hub = request.app[HUB]
    declared_length(request, body_cap(hub.config.hub, request.path))
    await check_headers(hub, request)
    if streams(request):  # its handler reads, stores and hashes the body, then verifies
        return await handler(request)
    async with held_body(request, hub.config.hub, hub.body_budget) as body:
        request[BODY] = body
        caller = await verify_caller(hub, request, body)
        request[CALLER] = caller
        try:
            return await handler(request)
        except (LivcrError, Problem) as exc:
            if not request.get(AUDITED, False):
                action = request.match_info.handler.__name__
                await record_refusal(hub, caller.participant_id, action, exc.code, str(exc))
            raise


async def purge_due_cases(hub: Hub) -> int:
    """Retention: delete envelopes and leaf data of closed cases whose period is over (§10.5).

    Closing a case scheduled its purge; each store call is one bounded batch, so the purge runs
    while the hub serves, and a round stops after PURGE_ROUND_SECONDS. Leaf hashes stay, so the
    tree and every checkpoint remain verifiable.
    """
    now = hub.clock()
    removed = 0
    started = time.monotonic()
    while time.monotonic() - started < PURGE_ROUND_SECONDS:
        done = await hub.store.purge_due(now, EXPIRY_BATCH)
        removed += done
        if done < EXPIRY_BATCH:
            break
    return removed


async def push_notices(hub: Hub, notices: AsyncGenerator[DeliveryNotice, None]) -> None:
    """Push envelopes other hub processes accepted to the recipients connected here.

    Only the process that holds a recipient's WebSocket pushes; it reads the delivery from the
    store, so an envelope acknowledged meanwhile is not pushed at all.
    """
    async with contextlib.aclosing(notices):  # its LISTEN connection closes with the task
        async for notice in notices:
            await push_notice(hub, notice)


async def push_notice(hub: Hub, notice: DeliveryNotice) -> None:
    for recipient in notice.recipients:
        if not hub.push.sockets.get(recipient):
            continue
        try:
            record = await hub.store.delivery(recipient, notice.message_id)
            if record is not None:
                hub.push.push(recipient, delivery_frame(record))
        except Exception as exc:  # noqa: BLE001  (one failed push must not stop the others)
            access_log.warning("push from another process failed", error=str(exc))


def create_app(
    config: HubConfig,
    *,
    store: HubStore,
    log_key: IdentityKey,
    clock: Clock = system_clock,
    random: RandomSource = os.urandom,
) -> web.Application:
    """Build the hub application. The store is opened and closed with the app."""

    app = web.Application(
        client_max_size=config.hub.max_request_bytes,
        middlewares=[
            access_middleware,
            store_middleware,
            problem_middleware,
            refusal_middleware,
            auth_middleware,
        ],
        # The keep-alive timer also runs from a connection's start until its first request is
        # whole: the header deadline. A body left unread (refused before it was read, or too
        # slow) is not drained: the connection closes after the answer.
        handler_args={
            "keepalive_timeout": config.hub.header_timeout_seconds,
            "lingering_time": 0,
        },
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
    app.cleanup_ctx.append(_notices_ctx)
    app.cleanup_ctx.append(_directory_ctx)
    app.on_shutdown.append(_close_streams)
    add_routes(app)
    install_witnessing(app, hub.log, store, config, hub.log.catch_up, log_key.public.raw, hub.clock)
    return app


async def _close_streams(app: web.Application) -> None:
    """Close push WebSockets on shutdown: aiohttp waits for open handlers before cleanup, so a
    connected gateway would otherwise hold the shutdown until its timeout."""
    await app[HUB].push.close_all()


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    await hub.store.open()
    await hub.refresh_directory()
    await hub.log.catch_up()
    hub.readiness.started = True
    yield
    hub.readiness.started = False
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


async def _notices_ctx(app: web.Application) -> AsyncIterator[None]:
    """Pushes for envelopes accepted by other processes on a shared store (PostgreSQL)."""
    hub = app[HUB]
    notices = hub.store.delivery_notices()
    task = None if notices is None else asyncio.create_task(push_notices(hub, notices))
    yield
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _directory_ctx(app: web.Application) -> AsyncIterator[None]:
    """While gateways are connected, re-read the directory every DIRECTORY_REFRESH_SECONDS, so a
    revocation written by another process (`livcr hub revoke`), or one dated to take effect
    later, closes the revoked participant's push stream even when no request comes in."""
    hub = app[HUB]

    async def loop() -> None:
        while True:
            await asyncio.sleep(DIRECTORY_REFRESH_SECONDS)
            if not any(hub.push.sockets.values()):
                continue
            try:
                await hub.current_directory()
            except Exception:  # noqa: BLE001  (a failed read is logged; the next one retries)
                access_log.exception("directory refresh failed")

    task = asyncio.create_task(loop(), name="hub-directory")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
