"""The console's aiohttp application and its listener beside the hub's participants' API.

``console_listener`` is a cleanup context for the hub's app: it starts the console on its own
host and port with the same ``Hub`` (store, log, directory, push registry), and stops it with
the hub. The participants' API serves none of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from ssl import SSLContext

import structlog
from aiohttp import web

from livcr_exchange.audit.leaves import DropReason

from ..app import HUB
from ..config import ConsoleConfig
from ..state import Hub
from ..store.base import StoreError
from ..witnessing import COLLECTOR
from . import deliveries, pages
from .i18n import Words
from .layout import PATHS, login_page, page
from .operators import check_password
from .security import SESSION, SESSIONS, Sessions, headers_middleware, session_middleware
from .verify import Verification

log = structlog.get_logger("livcr.hub.console")
STATIC = Path(__file__).parent / "static"
CONSOLE_HUB = web.AppKey("console_hub", Hub)
VERIFICATION = web.AppKey("verification", Verification)
STARTED_AT = web.AppKey("started_at", int)
# One drop at a time: a double-submitted form must find the delivery gone, not log it twice.
DROP_LOCK = web.AppKey("drop_lock", asyncio.Lock)
CosignedNote = Callable[[], bytes | None]
COSIGNED: web.AppKey[CosignedNote] = web.AppKey("cosigned")
PageBody = Callable[[pages.View], Awaitable[str]]


def create_console_app(
    hub: Hub,
    console: ConsoleConfig,
    *,
    tls: bool,
    cosigned: CosignedNote = lambda: None,
) -> web.Application:
    """The console for ``hub``; its store must be open while the console serves. ``cosigned``
    gives the newest checkpoint witnesses cosigned (hub/witnessing.py), if any."""
    app = web.Application(
        middlewares=[headers_middleware, session_middleware], client_max_size=64 * 1024
    )
    app[CONSOLE_HUB] = hub
    app[SESSIONS] = Sessions(
        hub.config.path(console.operators_file), console.session_minutes * 60, tls
    )
    app[VERIFICATION] = Verification()
    app[STARTED_AT] = hub.clock()
    app[DROP_LOCK] = asyncio.Lock()
    app[COSIGNED] = cosigned
    app.router.add_get("/login", show_login)
    app.router.add_post("/login", do_login)
    app.router.add_post("/logout", do_logout)
    for name, body in PAGES.items():
        app.router.add_get(PATHS[name], _page_handler(name, body))
    app.router.add_post("/log/verify", start_verify)
    app.router.add_post("/deliveries/drop", drop_delivery)
    app.router.add_get("/static/console.css", _static("console.css", "text/css"))
    app.router.add_get("/static/console.js", _static("console.js", "text/javascript"))
    return app


def _words(request: web.Request) -> Words:
    return Words(request.app[CONSOLE_HUB].config.hub.locale)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _view(request: web.Request) -> pages.View:
    hub = request.app[CONSOLE_HUB]
    return pages.View(
        hub,
        _words(request),
        hub.clock(),
        request[SESSION].csrf,
        request.app[STARTED_AT],
        request.app[VERIFICATION],
        request.app[COSIGNED](),
    )


async def show_login(request: web.Request) -> web.Response:
    return _html(login_page(_words(request)))


async def do_login(request: web.Request) -> web.StreamResponse:
    """Check the name and password (Argon2id, off the event loop); throttle repeated failures."""
    form = await request.post()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    sessions, words = request.app[SESSIONS], _words(request)
    if sessions.throttled(name):
        return _html(login_page(words, words["login_throttled"]), 429)
    operators = sessions.operators()
    ok = await asyncio.get_running_loop().run_in_executor(
        None, check_password, operators, name, password
    )
    if not ok:
        sessions.failed(name)
        log.warning("console login refused", operator=name if name in operators else None)
        return _html(login_page(words, words["login_failed"]), 401)
    response = web.HTTPSeeOther("/")
    sessions.open(response, name)
    log.info("console login", operator=name)
    raise response


async def do_logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    request.app[SESSIONS].close(request, response)
    raise response


def _page_handler(name: str, body: PageBody) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        view = _view(request)
        try:
            content = await body(view)
        except StoreError as exc:
            log.exception("console: store unavailable", error=str(exc))
            content = '<p class="alert" role="alert">store unavailable</p>'
        refresh = name == "log" and request.app[VERIFICATION].running
        return _html(page(view.words, name, content, csrf=view.csrf, refresh=refresh))

    return handler


async def start_verify(request: web.Request) -> web.StreamResponse:
    request.app[VERIFICATION].start(request.app[CONSOLE_HUB])
    raise web.HTTPSeeOther("/log")


async def drop_delivery(request: web.Request) -> web.StreamResponse:
    """Drop one delivery with a reason from the closed list; the drop is logged as a leaf."""
    form = await request.post()
    try:
        pid, seq = str(form["participant"]), int(str(form["delivery"]))
        reason = DropReason(str(form["reason"]))
    except (KeyError, ValueError) as exc:
        raise web.HTTPBadRequest(text="participant, delivery and a listed reason") from exc
    view = _view(request)
    try:
        async with request.app[DROP_LOCK]:
            dropped = await deliveries.drop(
                view.hub.store, pid, seq, reason, now=view.now, operator=request[SESSION].operator
            )
    except deliveries.NoSuchDelivery:
        message = view.words["drop_gone"]
    else:
        message = view.words.fmt("dropped", seq=seq, pid=pid, leaf=dropped.leaf_index)
    content = await pages.deliveries_page(view, message)
    return _html(page(view.words, "deliveries", content, csrf=view.csrf))


def _static(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    data = (STATIC / name).read_bytes()

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=data, content_type=content_type, charset="utf-8")

    return handler


PAGES: dict[str, PageBody] = {
    "overview": pages.overview,
    "participants": pages.participants,
    "log": pages.log_page,
    "refusals": pages.refusals_page,
    "retention": pages.retention_page,
    "deliveries": pages.deliveries_page,
}


def console_listener(
    console: ConsoleConfig, ssl_context: SSLContext | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context serving the console beside the hub app it is added to."""

    async def serve(app: web.Application) -> AsyncIterator[None]:
        collector = app.get(COLLECTOR)
        console_app = create_console_app(
            app[HUB],
            console,
            tls=ssl_context is not None,
            cosigned=lambda: None if collector is None else collector.latest,
        )
        runner = web.AppRunner(console_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, console.host, console.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:  # several hub processes on one config: one serves the console
            log.warning("console not started", port=console.port, error=str(exc))
        else:
            log.info("console listening", host=console.host, port=console.port)
        yield
        await runner.cleanup()

    return serve
