"""A hub in its own process, with an enrolled cell, for tests that kill and restart it."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from factories import seal_opaque
from json_client import JsonClient

from hub import operator
from hub.config import HubConfig, load_config
from hub.keyfiles import read_root_key
from livcr_exchange.envelope import MessageSpec, seal
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite
from livcr_exchange.request_auth import HubBinding
from livcr_exchange.roles import Role
from livcr_exchange.statements import PrekeyStatement

ROOT_PASSPHRASE = "root passphrase for tests"  # noqa: S105  (a test fixture)
KBO = "0207437468"
DAY = 86_400


# Listening ports for test processes come from below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default). A port from bind(0) lies inside it,
# and on a busy machine some outgoing connection may take it between the moment it is released
# here and the moment the process under test binds it ("address already in use").
LISTEN_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now, outside the ephemeral range."""
    for _ in range(200):
        port = random.choice(LISTEN_PORTS)  # noqa: S311  (a port, not a secret)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # held, or in TIME_WAIT: another one
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS}")


@dataclass
class Member:
    participant_id: str
    role: Role
    identity: IdentityKey = field(default_factory=lambda: IdentityKey.from_seed(os.urandom(32)))
    prekey: PrekeySecret = field(default_factory=lambda: PrekeySecret(Suite.X25519, os.urandom(32)))

    def bundle(self, now: int) -> operator.PublicBundle:
        statement = PrekeyStatement(
            self.participant_id, self.identity.key_id, self.prekey.public, now - DAY, now + 20 * DAY
        ).sign(self.identity)
        return operator.PublicBundle(self.participant_id, self.identity.public, (statement,))


@dataclass
class HubProcess:
    """`livcr hub serve` as a child process on a free loopback port."""

    directory: Path
    members: dict[str, Member]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_name: str = "serve.log"

    @classmethod
    def create(
        cls, directory: Path, roles: dict[str, Role], *, dsn: str | None = None
    ) -> HubProcess:
        """A cell in ``directory``; with ``dsn``, its store is that PostgreSQL database
        (migrated here, as `livcr hub migrate` does), else a SQLite file beside the config."""
        port = free_port()
        operator.init_cell(directory, "testcell", ROOT_PASSPHRASE.encode(), port=port, dsn=dsn)
        if dsn is not None:
            asyncio.run(operator.migrate(load_config(directory / operator.CONFIG_NAME)))
        hub = cls(directory, {pid: Member(pid, role) for pid, role in roles.items()}, port)
        config = hub.config
        root = read_root_key(directory / "root.secret", ROOT_PASSPHRASE.encode())
        now = int(time.time())

        async def enrol_all() -> None:
            async with operator.opened(config) as store:
                for member in hub.members.values():
                    await operator.enrol(
                        store,
                        config,
                        root,
                        member.bundle(now),
                        role=member.role,
                        organisation=KBO,
                        purposes=None,
                        now=now - DAY,
                        valid_days=30,
                    )

        asyncio.run(enrol_all())
        return hub

    def replica(self) -> HubProcess:
        """Another `livcr hub serve` of the same cell and config on a port of its own: on a
        PostgreSQL store, one more hub process sharing the queue and the log."""
        port = free_port()
        return HubProcess(self.directory, self.members, port, log_name=f"serve-{port}.log")

    @property
    def config_path(self) -> Path:
        return self.directory / operator.CONFIG_NAME

    @property
    def config(self) -> HubConfig:
        return load_config(self.config_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        log = (self.directory / self.log_name).open("ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "livcr_cli", "hub", "serve"),
                *("--config", str(self.config_path), "--port", str(self.port)),
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited with {self.process.returncode}")
            if self.ready():
                return
            time.sleep(0.05)
        self.kill()  # never leave a child behind for a later test's garbage collector
        raise TimeoutError("hub did not become ready")

    def ready(self) -> bool:
        """Whether the hub answers /readyz with 200: its store commits and its log is loaded."""
        # A test may have given the hub TLS after creating it: then only https answers. The
        # probe is on loopback to our own child process, so its certificate is not checked.
        loopback = ssl.create_default_context()
        loopback.check_hostname = False
        loopback.verify_mode = ssl.CERT_NONE
        for url, context in ((self.url, None), (self.url.replace("http:", "https:"), loopback)):
            try:
                with urllib.request.urlopen(  # noqa: S310  (our own hub on loopback)
                    url + "/readyz", timeout=2, context=context
                ) as answer:
                    return bool(answer.status == 200)
            except urllib.error.HTTPError:  # 503: it answers, and is not ready
                return False
            except OSError:  # not listening yet, or the other scheme
                continue
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flush: what survives is what was committed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def binding(self) -> HubBinding:
        """The cell and origin a request to this hub is signed for (spec §11.1)."""
        return HubBinding(self.config.hub.cell_id, self.config.origin)

    def client(self, participant_id: str, session: aiohttp.ClientSession) -> JsonClient:
        return JsonClient(
            self.url,
            participant_id,
            self.members[participant_id].identity,
            session,
            hub=self.binding,
        )

    def seal(
        self,
        sender: str,
        recipients: list[str],
        body: bytes,
        purpose: str,
        case_ref: str,
        opaque_size: int = 0,
    ) -> bytes:
        """An envelope of ``body``; or, with ``opaque_size``, of that many opaque bytes."""
        spec = MessageSpec(
            "testcell",
            sender,
            purpose,
            case_ref,
            {r: self.members[r].prekey.public for r in recipients},
            Suite.X25519,
        )
        if opaque_size:
            return seal_opaque(
                self.members[sender].identity,
                spec,
                opaque_size,
                now=int(time.time()),
                ttl=DAY,
                random=os.urandom,
            )
        return seal(
            self.members[sender].identity,
            spec,
            body,
            now=int(time.time()),
            ttl=DAY,
            random=os.urandom,
        )
