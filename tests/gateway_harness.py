"""A cell for the gateway API tests: a real hub process, real gateways, their local APIs.

``GatewayCell.create`` does what an operator and the services do: `hub init`, `gateway init` for
each participant (cheap Argon2id for the key files), `hub enrol` of each public bundle; then it
starts `livcr hub serve` in its own process. ``LoopThread`` runs the gateways and their local
APIs (``gateway.api.create_api`` on a loopback port) in a background event loop, so that tests
talk to them over real HTTP with a blocking client and can validate every answer against
specs/gateway-api.yaml.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import requests
import schemathesis
from hubproc import ROOT_PASSPHRASE, HubProcess, free_port

from gateway.api import create_api, serving
from gateway.config import GatewayConfig, load_config
from gateway.facade import Gateway
from gateway.setup import init_gateway
from hub import operator
from hub.config import load_config as load_hub_config
from hub.keyfiles import read_log_key, read_root_key
from livcr_exchange import keyfile
from livcr_exchange.roles import Role

T = TypeVar("T")
SPEC_PATH = Path(__file__).resolve().parent.parent / "specs" / "gateway-api.yaml"
CELL_ID = "testcell"
KBO = "0207437468"
PASSPHRASE = b"gateway test passphrase"
CHEAP_KEYS = (1, 8192)  # Argon2id cost of the test key files (recorded in each file)
PARTICIPANTS: dict[str, Role] = {
    "coord": Role.COORDINATOR,
    "caw": Role.DEELNEMER,
    "clb": Role.DEELNEMER,
    "politie": Role.IO_POLITIE,
}


@dataclass
class GatewayCell:
    """A hub process with the gateways' folders enrolled in its cell."""

    directory: Path
    hub: HubProcess
    configs: dict[str, Path]

    @classmethod
    def create(
        cls,
        directory: Path,
        participants: dict[str, Role] = PARTICIPANTS,
        *,
        start: bool = True,
        enrolled_ago: int = 60,
        origin: str = "",
    ) -> GatewayCell:
        """``enrolled_ago``: seconds before now that the directory entries start (a gateway
        whose clock runs behind needs them to be valid already). ``origin``: the hub's log
        origin, when not the default; the gateways are told it, as the operator would."""
        port = free_port()
        hub_dir = directory / "hub"
        with mock.patch("hub.keyfiles.lock", _cheap_lock):
            operator.init_cell(hub_dir, CELL_ID, ROOT_PASSPHRASE.encode(), port=port)
        if origin:
            toml = hub_dir / operator.CONFIG_NAME
            text = toml.read_text().replace("[hub]\n", f"[hub]\norigin = {json.dumps(origin)}\n", 1)
            toml.write_text(text)
        hub_config = load_hub_config(hub_dir / operator.CONFIG_NAME)
        root = read_root_key(hub_dir / "root.secret", ROOT_PASSPHRASE.encode())
        log_key = read_log_key(hub_dir / "log.key")
        now = int(time.time())
        bundles = {
            pid: init_gateway(
                directory / pid,
                participant_id=pid,
                cell_id=CELL_ID,
                root_key=root.public.to_text(),
                hub_url=f"http://127.0.0.1:{port}",
                hub_log_key=log_key.public.to_text(),
                passphrase=PASSPHRASE,
                now=now,
                key_cost=CHEAP_KEYS,
                api_port=free_port(),
                hub_origin=origin,
            )
            for pid in participants
        }

        async def enrol_all() -> None:
            async with operator.opened(hub_config) as store:
                for pid, role in participants.items():
                    await operator.enrol(
                        store,
                        hub_config,
                        root,
                        operator.PublicBundle.from_json(json.loads(bundles[pid].read_text())),
                        role=role,
                        organisation=KBO,
                        purposes=None,
                        now=now - enrolled_ago,
                        valid_days=30,
                    )

        asyncio.run(enrol_all())
        configs = {p: directory / p / "gateway.toml" for p in participants}
        cell = cls(directory, HubProcess(hub_dir, {}, port), configs)
        if start:
            cell.hub.start()
        return cell

    def config(self, participant_id: str) -> GatewayConfig:
        return load_config(self.configs[participant_id])

    def token(self, participant_id: str) -> str:
        config = self.config(participant_id)
        return config.path(config.api.token_file).read_text().strip()


def _cheap_lock(bundle: Any, passphrase: bytes, random: Any, **_: int) -> bytes:
    """The hub's root key file at the test cost (the cost is recorded in the file)."""
    return keyfile.lock(bundle, passphrase, random, opslimit=CHEAP_KEYS[0], memlimit=CHEAP_KEYS[1])


class LoopThread:
    """An event loop in a daemon thread; ``run`` executes a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateways", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def close(self) -> None:
        self.run(self.loop.shutdown_asyncgens())
        self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class RunningGateway:
    """One open gateway and its local API on a loopback port."""

    participant_id: str
    gateway: Gateway
    url: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        headers.setdefault("Authorization", f"Bearer {self.token if token is None else token}")
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, self.url + path, headers=headers, **kwargs)


class RunningGateways:
    """Open gateways with their APIs inside a ``LoopThread``; ``close`` shuts all down.

    ``clocks`` gives a gateway its own clock (the default is the system's).
    """

    def __init__(
        self,
        cell: GatewayCell,
        names: list[str],
        *,
        clocks: dict[str, Callable[[], int]] | None = None,
        **api_options: Any,
    ) -> None:
        self.loop = LoopThread()
        self._stack = contextlib.AsyncExitStack()
        self.gateways: dict[str, RunningGateway] = {}
        clocks = clocks or {}
        try:
            for name in names:
                self.gateways[name] = self.loop.run(
                    self._open(cell, name, clocks.get(name), api_options)
                )
        except BaseException:
            self.close()
            raise

    async def _open(
        self,
        cell: GatewayCell,
        name: str,
        clock: Callable[[], int] | None,
        api_options: dict[str, Any],
    ) -> RunningGateway:
        config = cell.config(name)
        options: dict[str, Any] = {} if clock is None else {"clock": clock}
        gateway = await self._stack.enter_async_context(
            Gateway.open(config, passphrase=PASSPHRASE, **options)
        )
        token = cell.token(name)
        url = await self._stack.enter_async_context(
            serving(create_api(gateway, token, **api_options))
        )
        return RunningGateway(name, gateway, url, token)

    def __getitem__(self, name: str) -> RunningGateway:
        return self.gateways[name]

    def close(self) -> None:
        for running in self.gateways.values():
            running.session.close()
        self.loop.run(self._stack.aclose())
        self.loop.close()


def load_spec() -> Any:
    return schemathesis.openapi.from_path(SPEC_PATH)
