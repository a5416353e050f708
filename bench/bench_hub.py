"""Hub throughput: signed envelopes submitted, durably committed and receipted, per second.

Usage: python bench/bench_hub.py [--quick] [--messages N] [--concurrency C] [--rounds R]

Concurrent clients on loopback POST envelopes (a 1 KiB body sealed to one recipient with the
default suite, X-Wing) to ``/v1/envelopes``, each request signed as spec §11.1 says. The hub
(the real app from ``create_app``, SQLite in WAL mode with ``synchronous=FULL``) verifies the
request and the envelope, applies policy, commits the envelope, its delivery and its log leaf
(grouped commits), and answers 201 with a receipt: a signed checkpoint and an inclusion proof.
A 201 therefore means "durable": once a configuration's hub processes have stopped, the script
counts the envelopes in the store against the 201s.

In the same run and with the same load generator, a bare aiohttp handler that only reads the
body and answers 201 takes the identical requests; the ratio hub/bare is the share of a plain
aiohttp server's rate that the hub keeps. Both are measured with 1 and with 2 server processes:
each process listens on its own port and the client spreads requests round-robin; the two hub
processes share one SQLite file (WAL; the store orders log leaves inside its transactions, its
writers take turns through a lock file beside the database, and its unique key refuses a
replayed envelope whichever process took it first). That is enough for
this measurement, but not a supported deployment: the SQLite store shares no push notices
between processes (``SQLiteStore.delivery_notices``); several hub processes belong on
PostgreSQL (DESIGN §6).

Envelopes and request signatures are made before each timed run, since sealing is the
senders' cost, not the hub's; because the hub refuses replays and stale timestamps (§9.1,
MAX_CLOCK_SKEW = 300 s), every round gets freshly sealed, distinct envelopes stamped with the
current time; each configuration starts from a fresh store. A round sends the same requests to
the bare servers, then to the hub, each time after an untimed warm-up; rounds repeat so that
drift on shared cores hits both alike. Server processes log as in production (one JSON line per
request, written to /dev/null here).
The client runs in this process and shares the machine's cores with the servers; its own CPU
time per timed request is reported (column "client us"). A bare server needs far less than the
client does, so the bare rate is mostly the client's limit, and the ratio compares the hub with
what this load generator can send.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import nacl.utils
from aiohttp import web

from livcr_exchange.envelope import MessageSpec, seal
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite
from livcr_exchange.request_auth import RequestTarget, sign_request
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry

CELL = "cell-bench"
CASE_REF = "case-ijqnmwfamfcrodj6yfrwqs37ea"
PURPOSE = "screening_vraag"  # coordinator -> member deelnemer, on a case in screening
SENDER, RECIPIENT = "coord", "caw"
BODY_BYTES = 1024
TTL = 7 * 86_400
DAY = 86_400
KBO = {"coord": "0207437468", "caw": "0207437567"}
HOST = "127.0.0.1"
PATH = "/v1/envelopes"
WORKER_COUNTS = (1, 2)


def det(label: str, size: int) -> bytes:
    """Deterministic key material for ``label`` (libsodium's randombytes_deterministic)."""
    seed = labelled_hash(b"livcr-exchange/v1 bench\x00", label.encode())
    value: bytes = nacl.utils.randombytes_deterministic(size, seed)
    return value


@dataclass(frozen=True)
class BenchCell:
    root: IdentityKey
    identities: dict[str, IdentityKey]
    recipient_prekey: PrekeySecret
    log_seed: bytes

    @classmethod
    def build(cls) -> BenchCell:
        return cls(
            IdentityKey.from_seed(det("root", 32)),
            {pid: IdentityKey.from_seed(det(f"identity {pid}", 32)) for pid in KBO},
            PrekeySecret(Suite.XWING, det("prekey caw", Suite.XWING.secret_seed_bytes)),
            det("log key", 32),
        )


# --- servers (each in its own process) ---------------------------------------------------------


def _silence_output() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def serve_hub(db_path: str, root_key: str, log_seed: bytes, port: int) -> None:
    """One hub process: the real app on ``port``, sharing the SQLite file ``db_path``."""
    from hub.app import create_app  # noqa: PLC0415  (the child process imports what it runs)
    from hub.config import HubConfig, HubSection, StoreConfig  # noqa: PLC0415
    from hub.store.sqlite import SQLiteStore  # noqa: PLC0415
    from livcr_exchange.service.logs import configure_logging  # noqa: PLC0415

    _silence_output()
    configure_logging("json", "info")
    path = Path(db_path)
    config = HubConfig(
        hub=HubSection(cell_id=CELL, root_key=root_key, host=HOST, port=port),
        store=StoreConfig(path=str(path)),
        base_dir=str(path.parent),
    )
    app = create_app(config, store=SQLiteStore(path), log_key=IdentityKey.from_seed(log_seed))
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


def serve_bare(port: int) -> None:
    """The baseline: aiohttp reading the body and answering 201, nothing else."""

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True}, status=201)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    _silence_output()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([web.post(PATH, receive), web.get("/healthz", healthz)])
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def servers(target: Any, args_per_port: list[tuple[Any, ...]]) -> Iterator[list[str]]:
    """Start one process per argument tuple (its last element is its port); yield base URLs."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=args, daemon=True) for args in args_per_port]
    for process in processes:
        process.start()
    urls = [f"http://{HOST}:{args[-1]}" for args in args_per_port]
    try:
        asyncio.run(wait_ready(urls, processes))
        yield urls
    finally:
        for process in processes:
            process.terminate()  # SIGTERM: run_app shuts down cleanly, closing the store
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()


async def wait_ready(urls: list[str], processes: list[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        for url in urls:
            while True:
                if any(p.exitcode is not None for p in processes):
                    raise SystemExit("a server process exited during start-up")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url + "/healthz") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{url} did not become ready within {timeout:.0f} s")
                await asyncio.sleep(0.05)


# --- the store a hub run starts from -----------------------------------------------------------


def prepare_store(path: Path, cell: BenchCell, now: int) -> None:
    """Enrol coordinator and recipient and open the case the envelopes are about."""
    from hub.operations import STATEMENT_HASH_LABEL, pending_leaf  # noqa: PLC0415
    from hub.store.base import CaseRecord, WriteBatch  # noqa: PLC0415
    from hub.store.sqlite import SQLiteStore  # noqa: PLC0415
    from livcr_exchange.audit.leaves import DirectoryChange  # noqa: PLC0415
    from livcr_exchange.statements import StatementType  # noqa: PLC0415

    roles = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER}
    batch = WriteBatch()
    for pid, role in roles.items():
        signed = DirectoryEntry(
            CELL,
            pid,
            KBO[pid],
            role,
            cell.identities[pid].public,
            frozenset({PURPOSE}),
            now - DAY,
            now + 365 * DAY,
        ).sign(cell.root)
        batch.statements.append(("entry", pid, signed))
        batch.leaves.append(
            pending_leaf(
                DirectoryChange(
                    now,
                    StatementType.DIRECTORY_ENTRY,
                    pid,
                    labelled_hash(STATEMENT_HASH_LABEL, signed),
                )
            )
        )
    batch.cases.append(
        CaseRecord(CASE_REF, "in_screening", None, None, frozenset(roles), {}, now, None, None)
    )

    async def commit() -> None:
        store = SQLiteStore(path)
        await store.open()
        try:
            await store.commit(batch)
        finally:
            await store.close()

    asyncio.run(commit())


def stored_envelopes(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        count: int = connection.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0]
        return count


# --- the load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    body: bytes
    headers: dict[str, str]


def prepare_requests(cell: BenchCell, count: int) -> list[Prepared]:
    """Distinct envelopes sealed now, each in a request signed now (fresh nonce)."""
    sender = cell.identities[SENDER]
    spec = MessageSpec(CELL, SENDER, PURPOSE, CASE_REF, {RECIPIENT: cell.recipient_prekey.public})
    now = int(time.time())
    prepared = []
    for _ in range(count):
        envelope = seal(sender, spec, os.urandom(BODY_BYTES), now=now, ttl=TTL, random=os.urandom)
        headers = sign_request(
            RequestTarget("POST", PATH, "", envelope), SENDER, sender, now=now, random=os.urandom
        )
        headers["Content-Type"] = "application/octet-stream"
        prepared.append(Prepared(envelope, headers))
    return prepared


@dataclass(frozen=True)
class Result:
    sent: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    client_cpu: float = 0.0  # seconds of this process's CPU time (the client's) over the run

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def load(
    urls: list[str], requests: list[Prepared], concurrency: int, expect: int = 201
) -> Result:
    """``concurrency`` clients, each sending the next request as soon as its last one answered."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal position
        while position < len(requests):
            index = position
            position += 1
            request = requests[index]
            started = time.perf_counter()
            async with session.post(
                urls[index % len(urls)] + PATH, data=request.body, headers=request.headers
            ) as response:
                await response.read()
                status = response.status
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        cpu_started = time.process_time()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    return Result(len(requests), statuses.get(expect, 0), seconds, latencies, statuses, cpu)


async def run_round(
    bare_urls: list[str], hub_urls: list[str], prepared: list[Prepared], warm_up: int, clients: int
) -> tuple[Result, Result, int]:
    """Bare then hub with the same requests (the first ``warm_up`` untimed); hub warm-up 201s."""
    await load(bare_urls, prepared[:warm_up], clients)
    bare = await load(bare_urls, prepared[warm_up:], clients)
    hub_warm = await load(hub_urls, prepared[:warm_up], clients)
    hub = await load(hub_urls, prepared[warm_up:], clients)
    return bare, hub, hub_warm.ok


# --- the report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One server configuration over all rounds."""

    rounds: list[Result]

    @property
    def rate(self) -> float:
        return statistics.median(r.rate for r in self.rounds)

    @property
    def spread(self) -> str:
        rates = [r.rate for r in self.rounds]
        return f"{min(rates):.0f}-{max(rates):.0f}" if len(rates) > 1 else "-"

    def percentile(self, share: float) -> float:
        pooled = Result(0, 0, 1.0, [x for r in self.rounds for x in r.latencies_ms], {})
        return pooled.percentile(share)

    @property
    def client_us(self) -> float:
        """The client's CPU time per timed request, in microseconds (median over rounds)."""
        return statistics.median(r.client_cpu / r.sent * 1e6 for r in self.rounds)

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.rounds)

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.rounds)

    @property
    def statuses(self) -> dict[int, int]:
        merged: dict[int, int] = {}
        for result in self.rounds:
            for status, count in result.statuses.items():
                merged[status] = merged.get(status, 0) + count
        return merged


@dataclass(frozen=True)
class Comparison:
    workers: int
    bare: Measured
    hub: Measured
    stored: int
    acknowledged: int  # 201s, warm-up included

    @property
    def ratio(self) -> float:
        """Median over rounds of hub/bare, each pair measured back to back."""
        return statistics.median(
            h.rate / b.rate for h, b in zip(self.hub.rounds, self.bare.rounds, strict=True)
        )


def print_table(comparisons: list[Comparison]) -> None:
    header = (
        f"{'procs':>5}  {'server':<14}{'msg/s':>8}{'range':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'client us':>11}{'ok/sent':>13}{'stored':>9}"
    )
    print(header)
    print("-" * len(header))
    for c in comparisons:
        for name, m, stored in (("bare aiohttp", c.bare, "-"), ("hub", c.hub, str(c.stored))):
            print(
                f"{c.workers:>5}  {name:<14}{m.rate:>8.0f}{m.spread:>12}{m.percentile(0.5):>9.2f}"
                f"{m.percentile(0.99):>9.2f}{m.client_us:>11.0f}{f'{m.ok}/{m.sent}':>13}{stored:>9}"
            )
        print(f"{'':>5}  {'hub / bare':<14}{c.ratio:>8.2f}")
    for c in comparisons:
        for name, m in (("bare", c.bare), ("hub", c.hub)):
            if m.ok != m.sent:
                print(f"unexpected answers, {name} x{c.workers} (status: count): {m.statuses}")
        if c.stored != c.acknowledged:
            print(f"hub x{c.workers}: {c.stored} envelopes stored, {c.acknowledged} acknowledged")


def measure(
    cell: BenchCell,
    folder: Path,
    workers: int,
    messages: int,
    warm_up: int,
    rounds: int,
    clients: int,
) -> Comparison:
    """Start ``workers`` bare and ``workers`` hub processes; alternate bare and hub rounds."""
    db = folder / f"hub-{workers}.sqlite3"
    prepare_store(db, cell, int(time.time()))
    hub_args = [
        (str(db), cell.root.public.to_text(), cell.log_seed, free_port()) for _ in range(workers)
    ]
    bare_rounds: list[Result] = []
    hub_rounds: list[Result] = []
    acknowledged = 0
    with (
        servers(serve_bare, [(free_port(),) for _ in range(workers)]) as bare_urls,
        servers(serve_hub, hub_args) as hub_urls,
    ):
        for _ in range(rounds):
            prepared = prepare_requests(cell, warm_up + messages)  # fresh: replays are refused
            bare, hub, warm_ok = asyncio.run(
                run_round(bare_urls, hub_urls, prepared, warm_up, clients)
            )
            bare_rounds.append(bare)
            hub_rounds.append(hub)
            acknowledged += warm_ok + hub.ok
    stored = stored_envelopes(db)  # after the hub processes stopped
    return Comparison(workers, Measured(bare_rounds), Measured(hub_rounds), stored, acknowledged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round (smoke test)")
    parser.add_argument("--messages", type=int, default=None, help="timed requests per round")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per configuration")
    args = parser.parse_args()
    messages = args.messages or (400 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    if messages < 1 or args.concurrency < 1 or rounds < 1:
        parser.error("--messages, --concurrency and --rounds must be positive")
    warm_up = max(50, messages // 10)

    cell = BenchCell.build()
    print("livcr-exchange hub benchmark")
    print(
        f"Python {platform.python_version()}, aiohttp {version('aiohttp')}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"{platform.system()} {platform.release()}"
    )
    sample = prepare_requests(cell, 1)[0]
    print(
        f"envelope: {BODY_BYTES} B body, suite X-Wing, 1 recipient, {len(sample.body)} B on the "
        f"wire; purpose {PURPOSE}; each request signed (spec §11.1)"
    )
    print(
        f"{rounds} round(s) per configuration, each {messages} timed requests after {warm_up} "
        f"untimed ones, bare and hub back to back; {args.concurrency} concurrent clients, "
        "HTTP/1.1 keep-alive on loopback, round-robin over the processes"
    )
    print(
        "hub: SQLite WAL, synchronous=FULL, group commit, one file shared by the processes "
        "(measurement only: SQLite is a one-process store); a 201 carries the receipt "
        "(signed checkpoint, inclusion proof)"
    )
    print()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="livcr-bench-hub-") as folder:
        comparisons = [
            measure(cell, Path(folder), workers, messages, warm_up, rounds, args.concurrency)
            for workers in WORKER_COUNTS
        ]
    print_table(comparisons)
    print(
        "\nmsg/s: median over rounds (range: min-max); p50/p99: over all timed requests; "
        "client us: the load generator's CPU time per request (median over rounds); "
        "hub / bare: median of the per-round ratios; stored: envelopes in the store after the "
        f"hub stopped (warm-up included). Total {time.monotonic() - started:.0f} s."
    )


if __name__ == "__main__":
    sys.exit(main())
