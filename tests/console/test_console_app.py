"""The console in-process: English pages, throttled logins, an operator's removal ends its
session, and every answer's headers, error pages included."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from hub.app import HUB, create_app
from hub.config import ConsoleConfig, parse_config
from hub.console import security
from hub.console.app import create_console_app
from hub.console.operators import add_operator, remove_operator
from hub.store.base import NewEnvelope, WriteBatch
from hub.store.sqlite import SQLiteStore
from livcr_exchange.audit.leaves import DeliveryDropped, decode_leaf, envelope_hash
from livcr_exchange.keys import IdentityKey

ROOT = IdentityKey.from_seed(bytes(32))
PASSWORD = "an operator password"  # noqa: S105  (a test fixture)
FAR = 10**10


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[str]:
    """The console's URL; one delivery waits for coord."""
    text = f'[hub]\ncell_id = "gent"\nroot_key = "{ROOT.public.to_text()}"\nlocale = "en"\n'
    config = parse_config(text + "checkpoint_interval_seconds = 3600\n", tmp_path)
    add_operator(tmp_path / "operators.json", "oncall", PASSWORD)
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    hub_app = create_app(config, store=store, log_key=IdentityKey.from_seed(bytes(range(32))))
    async with TestServer(hub_app) as hub_server:
        hub = hub_server.app[HUB]
        message_id = bytes(range(16))
        envelope = NewEnvelope(
            message_id, "caw", "aanmelding", "c-1", ("coord",), 1, FAR, 1, envelope_hash(b"x"), b"x"
        )
        await hub.store.commit(WriteBatch(envelopes=[envelope]))
        async with TestServer(create_console_app(hub, ConsoleConfig(), tls=False)) as server:
            yield str(server.make_url(""))


async def log_in(http: aiohttp.ClientSession, url: str, password: str) -> int:
    async with http.post(url + "/login", data={"name": "oncall", "password": password}) as answer:
        return answer.status


async def test_pages_in_english_with_headers(console: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await log_in(http, console, PASSWORD) == 200
        for path, heading in (("/", "Overview"), ("/deliveries", "Deliveries")):
            async with http.get(console + path) as answer:
                html = await answer.text()
                assert f"<h1>{heading}</h1>" in html
                assert '<html lang="en">' in html
                assert answer.headers["X-Frame-Options"] == "DENY"
                assert "style=" not in html  # nothing inline for the CSP to allow
                assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
        async with http.get(console + "/no-such-page") as answer:
            assert answer.status == 404
            assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


async def test_failed_logins_are_throttled(console: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for _ in range(security.FAILURES_ALLOWED):
            assert await log_in(http, console, "wrong password!") == 401
        assert await log_in(http, console, PASSWORD) == 429  # even the right one, for a while


async def test_removing_an_operator_ends_its_session(console: str, tmp_path: Path) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await log_in(http, console, PASSWORD) == 200
        assert remove_operator(tmp_path / "operators.json", "oncall")
        async with http.get(console + "/", allow_redirects=False) as answer:
            assert answer.status == 303
            assert answer.headers["Location"] == "/login"


async def test_a_double_submitted_drop_is_logged_once(console: str, tmp_path: Path) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await log_in(http, console, PASSWORD) == 200
        async with http.get(console + "/deliveries") as answer:
            html = await answer.text()
        match = re.search(r'name="csrf" value="([^"]+)"', html)
        assert match is not None
        seq = re.search(r'name="delivery" value="(\d+)"', html)
        assert seq is not None
        form = {"csrf": match.group(1), "participant": "coord", "delivery": seq.group(1)}
        form["reason"] = "too_old"

        async def drop() -> str:
            async with http.post(console + "/deliveries/drop", data=form) as answer:
                assert answer.status == 200
                return await answer.text()

        answers = await asyncio.gather(drop(), drop())
    assert sum("logged as leaf" in a for a in answers) == 1
    with sqlite3.connect(tmp_path / "hub.sqlite3") as connection:
        rows = connection.execute("SELECT data FROM leaves").fetchall()
    dropped = [d for (d,) in rows if isinstance(decode_leaf(bytes(d)), DeliveryDropped)]
    assert len(dropped) == 1


async def test_the_overview_counts_the_witnesses_cosignatures(tmp_path: Path) -> None:
    text = f'[hub]\ncell_id = "gent"\nroot_key = "{ROOT.public.to_text()}"\n'
    config = parse_config(text + "checkpoint_interval_seconds = 3600\n", tmp_path)
    add_operator(tmp_path / "operators.json", "oncall", PASSWORD)
    hub_app = create_app(
        config, store=SQLiteStore(tmp_path / "h.sqlite3"), log_key=IdentityKey.from_seed(bytes(32))
    )
    async with TestServer(hub_app) as hub_server:
        hub = hub_server.app[HUB]
        note = hub.log.checkpoint_note(0)
        # Two witnesses' lines, as the collector merges them (only their count is shown).
        cosigned = (
            note + "\u2014 w1.example/witness AAAA\n\u2014 w2.example/witness BBBB\n".encode()
        )
        console_app = create_console_app(hub, ConsoleConfig(), tls=False, cosigned=lambda: cosigned)
        async with TestServer(console_app) as server:
            url = str(server.make_url(""))
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                assert await log_in(http, url, PASSWORD) == 200
                async with http.get(url + "/") as answer:
                    html = await answer.text()
    assert '<dd data-metric="cosignatures">2</dd>' in html
    assert '<dd data-metric="cosigned-size">0</dd>' in html
