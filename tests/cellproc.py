"""A cell as processes: `livcr hub serve` and one `livcr gateway serve` per participant.

Tests drive the gateways over their local HTTP APIs, as a service's software would, and kill,
freeze or restart any process. Key files use cheap Argon2id (the root key once, at the default
cost); everything lives under the test's temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubproc import HubProcess, free_port

from gateway.setup import init_gateway
from hub import operator
from hub.config import load_config as load_hub_config
from hub.keyfiles import read_log_key, read_root_key
from livcr_exchange.keys import IdentityKey
from livcr_exchange.roles import Role

CELL = "testcell"
KBO = "0207437468"
ROOT_PASSPHRASE = b"root passphrase for tests"
GATEWAY_PASSPHRASE = "gateway passphrase for tests"  # noqa: S105  (a test fixture)
START_TIMEOUT = 30.0
# Quick retries and reconnects, so that recovery fits in a test.
FAST_GATEWAY = {"retry_initial_seconds": 0.2, "retry_max_seconds": 1.0}


class ApiError(Exception):
    """A problem document from a gateway's API."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class Api:
    """A client of one gateway's local HTTP API (bearer token from its `api.token`)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: object = None, timeout: float = 40.0) -> Any:
        """Raises ApiError for a problem answer, OSError when nothing answers."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310  (a loopback test gateway)
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            exc.close()
            problem = json.loads(payload) if payload.startswith(b"{") else {}
            raise ApiError(
                exc.code, str(problem.get("code", "http_error")), str(problem.get("detail", ""))
            ) from None
        return json.loads(payload) if payload else None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: object) -> Any:
        return self.call("POST", path, body)

    def send(
        self, case_ref: str, purpose: str, to: Iterable[str], body: object, **extra: Any
    ) -> Any:
        return self.post(
            "/v1/messages",
            {"case_ref": case_ref, "purpose": purpose, "to": sorted(to), "body": body, **extra},
        )


@dataclass
class GatewayProcess:
    """`livcr gateway serve` for one participant, in its own folder."""

    participant_id: str
    role: Role
    folder: Path
    api_port: int
    process: subprocess.Popen[bytes] | None = None
    cursor: int = 0
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.folder / "gateway.toml"

    @property
    def api(self) -> Api:
        token = (self.folder / "api.token").read_text().strip()
        return Api(f"http://127.0.0.1:{self.api_port}", token)

    @property
    def database(self) -> Path:
        return self.folder / "gateway.sqlite3"

    def spawn(self) -> subprocess.Popen[bytes]:
        with (self.folder / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "livcr_cli",
                    "gateway",
                    "serve",
                    "--config",
                    str(self.config_path),
                ],
                stdout=log,
                stderr=log,
                env={**os.environ, "LIVCR_PASSPHRASE": GATEWAY_PASSPHRASE},
            )
        return self.process

    def start(self, *, connected: bool = True, timeout: float = START_TIMEOUT) -> None:
        process = self.spawn()
        wait_listening(process, self.api_port, f"gateway {self.participant_id}", timeout)
        if connected:
            self.wait_status(lambda s: s.get("connected") is True, timeout)

    def wait_status(
        self, condition: Callable[[dict[str, Any]], bool], timeout: float = START_TIMEOUT
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status: dict[str, Any] = self.api.get("/v1/status")
            if condition(status):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.participant_id}: status stayed {status}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs; what survives is what was committed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def receive(self, wait: float = 2.0) -> list[dict[str, Any]]:
        """What arrived since the last call (long poll up to ``wait`` seconds)."""
        page = self.api.get(f"/v1/messages?after={self.cursor}&limit=1000&wait={wait:g}")
        self.cursor = int(page["next_after"])
        for message in page["messages"]:
            self.seen[message["message_id"]] = message
        messages: list[dict[str, Any]] = page["messages"]
        return messages

    def wait_for(self, message_ids: Iterable[str], timeout: float = 20.0) -> None:
        wanted = set(message_ids)
        deadline = time.monotonic() + timeout
        while not wanted <= self.seen.keys():
            if time.monotonic() > deadline:
                missing = sorted(wanted - self.seen.keys())
                raise TimeoutError(f"{self.participant_id} never received {missing}")
            self.receive(min(2.0, max(0.1, deadline - time.monotonic())))

    def dossier(self, case_ref: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.api.get(f"/v1/dossier?case_ref={case_ref}")["records"]
        return records

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the gateway's own SQLite file (read-only, beside the running process)."""
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def log(self) -> str:
        path = self.folder / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""


def wait_listening(
    process: subprocess.Popen[bytes], port: int, what: str, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not start listening on port {port}")


def gateway_overrides(folder: Path, settings: Mapping[str, object]) -> None:
    """Add settings to the [gateway] section of a gateway's TOML file."""
    path = folder / "gateway.toml"
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    path.write_text(path.read_text().replace("[gateway]\n", "[gateway]\n" + lines, 1))


class Cell:
    """A hub and gateways in processes; ``hub`` is a `HubProcess` (kill, start, stop)."""

    def __init__(
        self,
        directory: Path,
        roles: Mapping[str, Role],
        *,
        dsn: str | None = None,
        **settings: object,
    ) -> None:
        """``settings`` go into every gateway's [gateway] section. With ``dsn`` the hub's store
        is that PostgreSQL database (migrated here, as `livcr hub migrate` does)."""
        self.directory = directory
        port = free_port()
        made = operator.init_cell(directory / "hub", CELL, ROOT_PASSPHRASE, port=port, dsn=dsn)
        if dsn is not None:
            asyncio.run(operator.migrate(load_hub_config(directory / "hub" / operator.CONFIG_NAME)))
        self.root_key = str(made["root_key"])
        self.log_key = read_log_key(directory / "hub" / "log.key").public.to_text()
        self.hub = HubProcess(directory / "hub", {}, port)
        self._root: IdentityKey = read_root_key(directory / "hub" / "root.secret", ROOT_PASSPHRASE)
        self.gateways: dict[str, GatewayProcess] = {}
        for participant_id, role in roles.items():
            self.add_gateway(participant_id, role, **settings)

    def new_gateway_folder(
        self,
        participant_id: str,
        *,
        root_key: str | None = None,
        hub_url: str | None = None,
        **settings: object,
    ) -> tuple[Path, int, Path]:
        """Create a gateway folder (not enrolled); return its folder, API port and bundle."""
        folder = self.directory / participant_id
        api_port = free_port()
        bundle = init_gateway(
            folder,
            participant_id=participant_id,
            cell_id=CELL,
            root_key=root_key or self.root_key,
            hub_url=hub_url or self.hub.url,
            hub_log_key=self.log_key,
            passphrase=GATEWAY_PASSPHRASE.encode(),
            now=int(time.time()),
            api_port=api_port,
            key_cost=(1, 8192),
        )
        gateway_overrides(folder, {**FAST_GATEWAY, **settings})
        return folder, api_port, bundle

    def add_gateway(
        self, participant_id: str, role: Role, *, hub_url: str | None = None, **settings: object
    ) -> GatewayProcess:
        folder, api_port, bundle = self.new_gateway_folder(
            participant_id, hub_url=hub_url, **settings
        )
        self.enrol(json.loads(bundle.read_text()), role)
        gateway = GatewayProcess(participant_id, role, folder, api_port)
        self.gateways[participant_id] = gateway
        return gateway

    def enrol(self, bundle: dict[str, Any], role: Role) -> None:
        config = load_hub_config(self.hub.config_path)
        now = int(time.time())

        async def run() -> None:
            async with operator.opened(config) as store:
                await operator.enrol(
                    store,
                    config,
                    self._root,
                    operator.PublicBundle.from_json(bundle),
                    role=role,
                    organisation=KBO,
                    purposes=operator.default_purposes(role),
                    now=now - 60,
                    valid_days=30,
                )

        asyncio.run(run())

    def start(self) -> None:
        self.hub.start()
        for gateway in self.gateways.values():
            gateway.spawn()
        for gateway in self.gateways.values():
            assert gateway.process is not None
            wait_listening(gateway.process, gateway.api_port, gateway.participant_id)
        for gateway in self.gateways.values():
            gateway.wait_status(lambda s: s.get("connected") is True)

    def stop(self) -> None:
        for gateway in self.gateways.values():
            gateway.stop()
        self.hub.stop()

    def __getitem__(self, participant_id: str) -> GatewayProcess:
        return self.gateways[participant_id]

    def hub_query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(f"file:{self.hub.directory / 'hub.sqlite3'}?mode=ro", uri=True)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def verify_log(self) -> operator.LogReport:
        config = load_hub_config(self.hub.config_path)
        log_public = read_log_key(self.hub.directory / "log.key").public.raw

        async def run() -> operator.LogReport:
            async with operator.opened(config) as store:
                return await operator.verify_log(store, config, log_public)

        return asyncio.run(run())


def duplicates(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(message id, direction) pairs that occur more than once in a dossier listing."""
    seen: set[tuple[str, str]] = set()
    twice = []
    for record in records:
        key = (str(record["message_id"]), str(record["direction"]))
        if key in seen:
            twice.append(key)
        seen.add(key)
    return twice
