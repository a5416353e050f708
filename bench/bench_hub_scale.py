"""The hub's durable throughput and latency on SQLite and PostgreSQL, with 10^3 to 10^6 queued.

Usage: python bench/bench_hub_scale.py [--quick] [--levels 1000,100000,1000000]
                                       [--envelopes 2000] [--concurrency 32]
                                       [--dsn postgresql://postgres@127.0.0.1:5432/test]

Three set-ups run side by side in one run, each a real `livcr hub serve` (subprocesses, JSON
access log on, as in production):

    sqlite   one process, SQLite WAL with synchronous=FULL
    pg x1    one process, PostgreSQL with synchronous_commit=on
    pg x2    two processes on one PostgreSQL database (the client alternates between them)

For each queue level (envelopes already waiting in the store, for one recipient), the store is
topped up to that level by bulk inserts that bypass HTTP (rows shaped exactly as the hub writes
them: envelope, seen, delivery and a real ``EnvelopeAccepted`` leaf; 512-byte sealed blobs),
the hub processes are started (timing their start, which loads every leaf hash of the log), and
then measured:

    submit   ENVELOPES fresh sealed envelopes (X25519 suite, one recipient) POSTed with
             CONCURRENCY requests in flight, after an unmeasured warm-up of WARM_UP more (so
             connection pools and prepared statements are in place); each request returns
             only after the group commit that holds it is durable. Throughput is envelopes/s
             over the wall time; p50 and p99 are per-request latencies (client signing
             included, sealing done beforehand).
    inbox    200 inbox pages (limit 50) fetched one after the other: p50 and p99.
    memory   resident set size of each hub process after the load (VmRSS), and the store's
             size on disk (SQLite files; pg_database_size).

The machine has two cores shared by the client, the hub processes and PostgreSQL: quote the
ratios between set-ups of one run rather than absolute rates, and expect a second hub process
to help only as far as a core is free. The PostgreSQL database is created for the run and
dropped after it; SQLite lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from hub import operator
from hub.config import HubConfig, load_config
from hub.keyfiles import write_log_key
from livcr_exchange.audit.leaves import EnvelopeAccepted
from livcr_exchange.audit.merkle import leaf_hash
from livcr_exchange.envelope import MessageSpec, seal
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubClient
from livcr_exchange.statements import PrekeyStatement

CELL = "bench"
SENDER, RECIPIENT = "caw", "coord"
CASE = "case-ijqnmwfamfcrodj6yfrwqs37ea"
DAY = 86_400
FAR = 2**40  # expiry of seeded envelopes: never purged during the run
SEED_BLOB = 512
SEED_CHUNK = 50_000
INBOX_FETCHES = 200
WARM_UP = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Party:
    participant_id: str
    role: Role
    identity: IdentityKey = field(default_factory=lambda: IdentityKey.from_seed(os.urandom(32)))
    prekey: PrekeySecret = field(default_factory=lambda: PrekeySecret(Suite.X25519, os.urandom(32)))

    def bundle(self, now: int) -> operator.PublicBundle:
        statement = PrekeyStatement(
            self.participant_id, self.identity.key_id, self.prekey.public, now - DAY, now + 9 * DAY
        ).sign(self.identity)
        return operator.PublicBundle(self.participant_id, self.identity.public, (statement,))


@dataclass
class Setup:
    """One cell on one store, served by ``processes`` hub processes."""

    name: str
    directory: Path
    processes: int
    parties: dict[str, Party]
    ports: list[int] = field(default_factory=list)
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)
    seeded: int = 0  # envelopes bulk-inserted so far

    @property
    def config_path(self) -> Path:
        return self.directory / "hub.toml"

    @property
    def config(self) -> HubConfig:
        return load_config(self.config_path)

    def start(self) -> float:
        """Start the processes; return the seconds until all of them answer /healthz."""
        started = time.perf_counter()
        self.ports = [free_port() for _ in range(self.processes)]
        log = (self.directory / "serve.log").open("ab")
        for port in self.ports:
            command = [sys.executable, "-m", "livcr_cli", "hub", "serve"]
            command += ["--config", str(self.config_path), "--port", str(port)]
            self.running.append(subprocess.Popen(command, stdout=log, stderr=log))  # noqa: S603
        log.close()
        for port in self.ports:
            wait_healthy(port, self.running)
        return time.perf_counter() - started

    def stop(self) -> None:
        for process in self.running:
            process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running = []

    def rss_mib(self) -> list[float]:
        return [rss_mib(process.pid) for process in self.running]


def wait_healthy(port: int, running: list[subprocess.Popen[bytes]], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in running):
            raise RuntimeError("a hub process exited; see serve.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                if b"200" in sock.recv(64):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"hub on port {port} did not answer")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_setup(name: str, directory: Path, store_toml: str, processes: int) -> Setup:
    """Write a config and keys, migrate the store, enrol the two parties."""
    directory.mkdir(parents=True)
    root = IdentityKey.from_seed(os.urandom(32))
    write_log_key(directory / "log.key", IdentityKey.from_seed(os.urandom(32)))
    (directory / "hub.toml").write_text(
        f'[hub]\ncell_id = "{CELL}"\nroot_key = "{root.public.to_text()}"\n'
        f'log_key_file = "log.key"\ncheckpoint_interval_seconds = 1.0\n\n{store_toml}\n'
        '[logging]\nformat = "json"\n'
    )
    setup = Setup(
        name,
        directory,
        processes,
        {SENDER: Party(SENDER, Role.DEELNEMER), RECIPIENT: Party(RECIPIENT, Role.COORDINATOR)},
    )
    config = setup.config
    now = int(time.time())

    async def enrol() -> None:
        await operator.migrate(config)
        async with operator.opened(config) as store:
            for party in setup.parties.values():
                await operator.enrol(
                    store,
                    config,
                    root,
                    party.bundle(now),
                    role=party.role,
                    organisation="0207437468",
                    purposes=None,
                    now=now - DAY,
                    valid_days=30,
                )

    asyncio.run(enrol())
    return setup


# Bulk seeding: the rows one accepted envelope leaves, without HTTP.
def seed_rows(start: int, count: int) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(message id, leaf data, leaf hash) for seeded envelopes start .. start + count - 1."""
    for n in range(start, start + count):
        message_id = b"seed" + n.to_bytes(12, "big")
        data = EnvelopeAccepted(
            1, message_id, SENDER, "aanmelding", CASE, (RECIPIENT,), bytes(32), SEED_BLOB
        ).encode()
        yield message_id, data, leaf_hash(data)


def seed_sqlite(path: Path, start: int, count: int) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    blob = os.urandom(SEED_BLOB)
    try:
        for chunk_start in range(start, start + count, SEED_CHUNK):
            rows = list(seed_rows(chunk_start, min(SEED_CHUNK, start + count - chunk_start)))
            connection.execute("BEGIN IMMEDIATE")
            first = connection.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves").fetchone()[0]
            connection.executemany(
                "INSERT INTO leaves (idx, leaf_hash, data, case_ref) VALUES (?, ?, ?, ?)",
                [(first + i, h, d, CASE) for i, (_, d, h) in enumerate(rows)],
            )
            connection.executemany(
                "INSERT INTO envelopes VALUES (?, ?, 'aanmelding', ?, 1, ?, ?, ?)",
                [(m, SENDER, CASE, FAR, first + i, blob) for i, (m, _, _) in enumerate(rows)],
            )
            connection.executemany(
                "INSERT INTO seen VALUES (?, ?, ?, ?)",
                [(SENDER, m, FAR, first + i) for i, (m, _, _) in enumerate(rows)],
            )
            connection.executemany(
                "INSERT INTO deliveries (recipient_id, message_id) VALUES (?, ?)",
                [(RECIPIENT, m) for m, _, _ in rows],
            )
            connection.execute("COMMIT")
    finally:
        connection.close()


async def seed_postgres(dsn: str, start: int, count: int) -> None:
    connection = await asyncpg.connect(dsn)
    blob = os.urandom(SEED_BLOB)
    try:
        for chunk_start in range(start, start + count, SEED_CHUNK):
            rows = list(seed_rows(chunk_start, min(SEED_CHUNK, start + count - chunk_start)))
            async with connection.transaction():
                first = await connection.fetchval("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves")
                await connection.copy_records_to_table(
                    "leaves", records=[(first + i, h, d, CASE) for i, (_, d, h) in enumerate(rows)]
                )
                await connection.copy_records_to_table(
                    "envelopes",
                    records=[
                        (m, SENDER, "aanmelding", CASE, 1, FAR, first + i, blob)
                        for i, (m, _, _) in enumerate(rows)
                    ],
                )
                await connection.copy_records_to_table(
                    "seen",
                    records=[(SENDER, m, FAR, first + i) for i, (m, _, _) in enumerate(rows)],
                )
                await connection.copy_records_to_table(
                    "deliveries",
                    records=[(RECIPIENT, m) for m, _, _ in rows],
                    columns=["recipient_id", "message_id"],
                )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def top_up(setup: Setup, level: int) -> float:
    """Bulk-insert envelopes until ``level`` are queued; return the seconds it took."""
    started = time.perf_counter()
    missing = level - setup.seeded
    if missing > 0:
        config = setup.config
        if config.store.kind == "sqlite":
            seed_sqlite(config.path(config.store.path), setup.seeded, missing)
        else:
            asyncio.run(seed_postgres(config.store.dsn, setup.seeded, missing))
        setup.seeded = level
    return time.perf_counter() - started


def store_mib(setup: Setup) -> float:
    config = setup.config
    if config.store.kind == "sqlite":
        path = config.path(config.store.path)
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20

    async def size() -> int:
        connection = await asyncpg.connect(config.store.dsn)
        try:
            value: int = await connection.fetchval("SELECT pg_database_size(current_database())")
            return value
        finally:
            await connection.close()

    return asyncio.run(size()) / 2**20


# Load.
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Result:
    setup: str
    queued: int
    throughput: float
    p50_ms: float
    p99_ms: float
    failures: int
    inbox_p50_ms: float
    inbox_p99_ms: float
    rss_mib: list[float]
    start_s: float
    store_mib: float


def sealed_envelopes(setup: Setup, count: int) -> list[bytes]:
    sender, recipient = setup.parties[SENDER], setup.parties[RECIPIENT]
    spec = MessageSpec(
        CELL, SENDER, "aanmelding", CASE, {RECIPIENT: recipient.prekey.public}, Suite.X25519
    )
    now = int(time.time())
    return [
        seal(sender.identity, spec, b'{"n": %d}' % n, now=now, ttl=DAY, random=os.urandom)
        for n in range(count)
    ]


async def measure(
    setup: Setup, envelopes: list[bytes], concurrency: int, warm_up: int = 0
) -> tuple[float, list[float], int, list[float]]:
    urls = [f"http://127.0.0.1:{port}" for port in setup.ports]
    latencies: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        clients = [HubClient(u, SENDER, setup.parties[SENDER].identity, session) for u in urls]
        reader = HubClient(urls[-1], RECIPIENT, setup.parties[RECIPIENT].identity, session)
        queue: list[tuple[int, bytes]] = []

        async def worker(record: list[float]) -> None:
            nonlocal failures
            while queue:
                n, envelope = queue.pop()
                started = time.perf_counter()
                try:
                    await clients[n % len(clients)].submit(envelope)
                except Exception:  # noqa: BLE001  (counted and reported)
                    failures += 1
                    continue
                record.append(time.perf_counter() - started)

        queue = list(enumerate(envelopes[:warm_up]))[::-1]
        await asyncio.gather(*(worker([]) for _ in range(concurrency)))
        failures = 0
        queue = list(enumerate(envelopes[warm_up:]))[::-1]
        started = time.perf_counter()
        await asyncio.gather(*(worker(latencies) for _ in range(concurrency)))
        wall = time.perf_counter() - started
        fetches: list[float] = []
        for _ in range(INBOX_FETCHES):
            begun = time.perf_counter()
            await reader.inbox(after=0, limit=50)
            fetches.append(time.perf_counter() - begun)
    return wall, latencies, failures, fetches


def run_level(setup: Setup, level: int, count: int, concurrency: int) -> Result:
    seeded_in = top_up(setup, level)
    envelopes = sealed_envelopes(setup, WARM_UP + count)
    start_s = setup.start()
    try:
        wall, latencies, failures, fetches = asyncio.run(
            measure(setup, envelopes, concurrency, WARM_UP)
        )
        rss = setup.rss_mib()
    finally:
        setup.stop()
    setup.seeded += WARM_UP + count - failures  # the load's envelopes stay queued too
    print(
        f"  {setup.name:<7} queued {level:>9,}: seeded in {seeded_in:6.1f} s, "
        f"started in {start_s:5.1f} s, {len(latencies) / wall:7.0f} env/s",
        file=sys.stderr,
        flush=True,
    )
    return Result(
        setup.name,
        level,
        len(latencies) / wall,
        statistics.median(latencies) * 1000,
        percentile(latencies, 0.99) * 1000,
        failures,
        statistics.median(fetches) * 1000,
        percentile(fetches, 0.99) * 1000,
        rss,
        start_s,
        store_mib(setup),
    )


@contextmanager
def bench_database(admin_dsn: str) -> Iterator[str]:
    name = "livcr_bench_" + uuid.uuid4().hex[:12]

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin_dsn)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def report(results: list[Result], levels: list[int], names: list[str]) -> None:
    by = {(r.setup, r.queued): r for r in results}
    print()
    print("Durable submissions (envelopes/s, higher is better; latency in ms)")
    header = f"{'queued':>10} | " + " | ".join(f"{n:^27}" for n in names)
    print(header)
    print(f"{'':>10} | " + " | ".join(f"{'env/s':>7} {'p50':>8} {'p99':>8}  " for _ in names))
    print("-" * len(header))
    for level in levels:
        cells = []
        for name in names:
            r = by[(name, level)]
            cells.append(f"{r.throughput:7.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f}  ")
        print(f"{level:>10,} | " + " | ".join(cells))
    print()
    print("Inbox page (limit 50) latency, ms: p50 / p99")
    for level in levels:
        cells = [
            f"{by[(n, level)].inbox_p50_ms:6.1f} / {by[(n, level)].inbox_p99_ms:6.1f}"
            for n in names
        ]
        print(f"{level:>10,} | " + " | ".join(f"{c:^27}" for c in cells))
    print()
    print("Memory: RSS per hub process after the load (MiB); start-up (s); store on disk (MiB)")
    for level in levels:
        cells = []
        for name in names:
            r = by[(name, level)]
            rss = "+".join(f"{m:.0f}" for m in r.rss_mib)
            cells.append(f"{rss:>9} {r.start_s:6.1f}s {r.store_mib:7.0f}")
        print(f"{level:>10,} | " + " | ".join(f"{c:^27}" for c in cells))
    failed = sum(r.failures for r in results)
    if failed:
        print(f"\n{failed} submissions failed (see serve.log); they are left out of the rates")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="levels 1000,10000; 500 envelopes")
    parser.add_argument("--levels", default="1000,100000,1000000")
    parser.add_argument("--envelopes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--dsn",
        default=os.environ.get("LIVCR_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server where the run may create (and then drop) a database",
    )
    args = parser.parse_args()
    levels = [1000, 10_000] if args.quick else [int(x) for x in args.levels.split(",")]
    count = 500 if args.quick else args.envelopes
    print(
        f"# bench_hub_scale: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {count} envelopes per cell, {args.concurrency} in flight",
        flush=True,
    )
    results: list[Result] = []
    with (
        tempfile.TemporaryDirectory(prefix="livcr-bench-") as tmp,
        bench_database(args.dsn) as dsn_one,
        bench_database(args.dsn) as dsn_two,
    ):
        folder = Path(tmp)
        setups = [
            make_setup(
                "sqlite", folder / "sqlite", '[store]\nkind = "sqlite"\npath = "hub.sqlite3"\n', 1
            ),
            make_setup(
                "pg x1", folder / "pg1", f'[store]\nkind = "postgresql"\ndsn = "{dsn_one}"\n', 1
            ),
            make_setup(
                "pg x2", folder / "pg2", f'[store]\nkind = "postgresql"\ndsn = "{dsn_two}"\n', 2
            ),
        ]
        for level in levels:
            print(f"queued {level:,}", file=sys.stderr, flush=True)
            results.extend(run_level(setup, level, count, args.concurrency) for setup in setups)
    report(results, levels, [s.name for s in setups])


if __name__ == "__main__":
    main()
