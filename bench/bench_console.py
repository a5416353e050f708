"""The operator console's page latency with 10^5 deliveries queued, against a bare handler.

Usage: python bench/bench_console.py [--deliveries 100000] [--requests 200]
                                     [--dsn postgresql://postgres@127.0.0.1:5432/test]

A cell is made with `hub.operator` (twenty enrolled services), its store filled directly with
DELIVERIES queued deliveries (one 512-byte envelope each, spread over the services and over
the last 30 days), 10^4 refusals over 14 days, an "envelope accepted" leaf per envelope and a
scheduled purge per 1000 deliveries. Then `livcr hub serve` runs it with its console, and the
script logs in and GETs each page REQUESTS times, one request at a time, after a warm-up. The
baseline is a bare aiohttp handler answering "ok" in a process of its own, fetched the same
way: the ratio says what the console's work costs over aiohttp's own round trip. With --dsn the
store is a fresh PostgreSQL database (created and dropped, VACUUM ANALYZEd after the load as
autovacuum would), else SQLite. The machine is shared: quote p50s, and rerun when noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from hub import operator
from hub.config import load_config
from hub.console.operators import add_operator
from hub.keyfiles import read_root_key
from hub.operations import pending_leaf
from hub.store.base import CaseRecord, HubStore, NewEnvelope, WriteBatch
from livcr_exchange.audit.leaves import EnvelopeAccepted, envelope_hash
from livcr_exchange.keys import IdentityKey
from livcr_exchange.roles import Role

PASSPHRASE = b"bench root passphrase"
PASSWORD = "bench console password"  # noqa: S105  (a benchmark fixture)
PAGES = ("/", "/participants", "/log", "/refusals", "/retention", "/deliveries")
SERVICES = tuple(f"svc-{n:02d}" for n in range(20))
DAY = 86_400
BASELINE = """
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/", ok)
web.run_app(app, host="127.0.0.1", port={port}, access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("server did not start")


async def enrol_services(store: HubStore, folder: Path) -> None:
    config = load_config(folder / operator.CONFIG_NAME)
    root = read_root_key(folder / "root.secret", PASSPHRASE)
    now = int(time.time())
    for pid in SERVICES:
        bundle = operator.PublicBundle(pid, IdentityKey.from_seed(os.urandom(32)).public, ())
        await operator.enrol(
            store,
            config,
            root,
            bundle,
            role=Role.DEELNEMER,
            organisation="0207437468",
            purposes=None,
            now=now - DAY,
            valid_days=30 if pid != "svc-00" else 3,
        )


async def fill(store: HubStore, deliveries: int) -> None:
    """Queued deliveries, refusals, scheduled purges: rows as the hub writes them."""
    now = int(time.time())
    for start in range(0, deliveries, 2000):
        batch = WriteBatch()
        for n in range(start, min(deliveries, start + 2000)):
            envelope = NewEnvelope(
                n.to_bytes(16, "big"),
                "svc-19",
                "aanmelding",
                f"case-{n // 1000:05d}",
                (SERVICES[n % 19],),
                now - (n * 30 * DAY) // deliveries,
                now + 60 * DAY,
                512,
                bytes(32),  # the envelope hash: the console never reads it
                os.urandom(512),
            )
            batch.envelopes.append(envelope)
            leaf = EnvelopeAccepted(
                envelope.accepted_at,
                envelope.message_id,
                "svc-19",
                "aanmelding",
                envelope.case_ref,
                envelope.recipients,
                envelope_hash(envelope.blob),
                512,
            )
            batch.leaves.append(pending_leaf(leaf, envelope.case_ref))
        batch.refusals = [
            (now - (n * 14 * DAY) // 10_000, "replayed" if n % 3 else "stale")
            for n in range(start // 10, (start + 2000) // 10)
        ]
        await store.commit(batch)
    cases = [
        CaseRecord(
            f"case-{c:05d}", "afgesloten", None, None, frozenset(), {}, 0, now, now + c * DAY
        )
        for c in range(deliveries // 1000)
    ]
    await store.commit(WriteBatch(cases=cases))


def make_cell(folder: Path, dsn: str | None, deliveries: int) -> Path:
    """The cell's folder, its store filled; returns the config path."""
    console_port = free_port()
    operator.init_cell(
        folder, "bench", PASSPHRASE, port=free_port(), dsn=dsn, console_port=console_port
    )
    config_path = folder / operator.CONFIG_NAME
    config = load_config(config_path)
    add_operator(folder / "operators.json", "bench", PASSWORD)
    if dsn is not None:
        asyncio.run(operator.migrate(config))

    async def run() -> None:
        async with operator.opened(config) as store:
            await enrol_services(store, folder)
            await fill(store, deliveries)
        if dsn is not None:  # what autovacuum does soon after a bulk load; SQLite needs none
            import asyncpg  # noqa: PLC0415

            connection = await asyncpg.connect(dsn)
            try:
                await connection.execute("VACUUM ANALYZE")
            finally:
                await connection.close()

    started = time.perf_counter()
    asyncio.run(run())
    print(f"filled the store: {deliveries} deliveries in {time.perf_counter() - started:.1f} s")
    return config_path


async def timings(url: str, requests: int, session: aiohttp.ClientSession) -> list[float]:
    for _ in range(10):  # warm-up
        async with session.get(url) as answer:
            await answer.read()
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        async with session.get(url, allow_redirects=False) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{url}: {answer.status}")
        seconds.append(time.perf_counter() - started)
    return seconds


async def measure(console_url: str, baseline_url: str, requests: int) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        form = {"name": "bench", "password": PASSWORD}
        async with session.post(console_url + "/login", data=form) as answer:
            if answer.status != 200 or not answer.history:
                raise RuntimeError("login failed")
        base = statistics.median(await timings(baseline_url, requests, session))
        print(f"{'page':<14} {'p50 ms':>8} {'p90 ms':>8} {'ratio to bare handler':>22}")
        print(f"{'(bare aiohttp)':<14} {base * 1000:>8.2f} {'':>8} {1.0:>22.1f}")
        for page in PAGES:
            seconds = sorted(await timings(console_url + page, requests, session))
            p50, p90 = statistics.median(seconds), seconds[int(len(seconds) * 0.9)]
            print(f"{page:<14} {p50 * 1000:>8.2f} {p90 * 1000:>8.2f} {p50 / base:>22.1f}")


def serve(config_path: Path, requests: int) -> None:
    config = load_config(config_path)
    assert config.console is not None
    log = (config_path.parent / "serve.log").open("ab")
    hub = subprocess.Popen(  # noqa: S603  (our own CLI)
        [sys.executable, "-m", "livcr_cli", "hub", "serve", "--config", str(config_path)],
        stdout=log,
        stderr=log,
    )
    baseline_port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BASELINE.format(port=baseline_port)])  # noqa: S603
    try:
        wait_listening(config.console.port, hub)
        wait_listening(baseline_port, bare)
        console_url = f"http://127.0.0.1:{config.console.port}"
        asyncio.run(measure(console_url, f"http://127.0.0.1:{baseline_port}/", requests))
    finally:
        for process in (hub, bare):
            process.terminate()
            process.wait(timeout=30)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--dsn", default=None, help="PostgreSQL server (a database is made)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        dsn = None
        if args.dsn:
            import asyncpg  # noqa: PLC0415

            name = f"bench_console_{uuid.uuid4().hex[:8]}"

            async def admin(sql: str) -> None:
                connection = await asyncpg.connect(args.dsn)
                try:
                    await connection.execute(sql)
                finally:
                    await connection.close()

            asyncio.run(admin(f'CREATE DATABASE "{name}"'))
            dsn = with_database(args.dsn, name)
        try:
            print(f"store: {'postgresql' if dsn else 'sqlite'}")
            serve(make_cell(Path(folder) / "cell", dsn, args.deliveries), args.requests)
        finally:
            if dsn:
                asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
