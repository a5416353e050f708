"""A reverse proxy in front of the hub that can swallow the hub's answers to envelope submissions.

``python swallow_proxy.py UPSTREAM PORT STATE_FILE``. After SIGUSR1, a ``POST /v1/envelopes`` is
still forwarded (the hub commits it) but its answer never comes back: a gateway killed then is
killed "while sending", with a message the hub holds and the gateway does not know it does.
SIGUSR2 lets answers through again. Each swallowed answer appends a line to STATE_FILE. The push
stream is not proxied (503): the gateway behind this proxy only sends.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def main() -> None:
    upstream, port, state = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    swallow = asyncio.Event()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/stream":
            return web.Response(status=503, text="not proxied")
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        session = request.app[SESSION]
        # The path and query exactly as sent: the hub verifies the signature over the raw query
        # ("ids=a%2Cb"), which a decoded one ("ids=a,b") would not match.
        target = URL(upstream + request.raw_path, encoded=True)
        async with session.request(request.method, target, data=body, headers=headers) as answer:
            payload = await answer.read()
            content_type = answer.headers.get("Content-Type", "application/octet-stream")
        if swallow.is_set() and request.method == "POST" and request.path == "/v1/envelopes":
            with state.open("a") as handle:
                handle.write(f"swallowed {answer.status}\n")
            await asyncio.Event().wait()  # the hub answered; the gateway never hears it
        return web.Response(
            status=answer.status, body=payload, headers={"Content-Type": content_type}
        )

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[SESSION] = aiohttp.ClientSession()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, swallow.set)
        loop.add_signal_handler(signal.SIGUSR2, swallow.clear)
        yield
        await app[SESSION].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=1)


SESSION = web.AppKey("session", aiohttp.ClientSession)

if __name__ == "__main__":
    main()
