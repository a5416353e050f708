"""A hub in its own process with the demo's cell, a console, and a store with something in it.

The cell has the demo's services and roles. The coordinator opens two cases and closes one (its
purge is scheduled), services send each other the purposes' example bodies (sealed: the hub
never sees the people in them), some requests are refused, and one service is revoked. Nobody
fetches, so every delivery stays queued. ``secrets`` holds what no console page may show: the
case references, the message ids and the names of the people in the bodies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from hubproc import ROOT_PASSPHRASE, HubProcess, free_port

from hub import operator
from hub.console.operators import add_operator
from hub.keyfiles import read_root_key
from livcr_exchange.cases import mint_case_ref
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE
from livcr_exchange.roles import Role
from livcr_exchange.service.hub_client import HubRefused

OPERATOR = "oncall"
PASSWORD = "a console password for tests"  # noqa: S105  (a test fixture)
ROLES = {
    "coord": Role.COORDINATOR,
    "io-politie": Role.IO_POLITIE,
    "caw": Role.DEELNEMER,
    "clb": Role.DEELNEMER,
    "ocmw": Role.DEELNEMER,
    "school": Role.AANMELDER_EXTERN,
}
# Each message: its sender, its recipients, its purpose.
REFERRAL = (
    ("school", ["coord"], "aanmelding"),
    ("coord", ["school"], "terugkoppeling_aanmelder"),
)
SCREENING = (
    ("coord", ["io-politie", "caw", "clb", "ocmw"], "screening_vraag"),
    ("caw", ["coord"], "screening_antwoord"),
    ("clb", ["coord"], "screening_antwoord"),
)


@dataclass
class DemoCell:
    hub: HubProcess
    console_port: int
    case_refs: list[str] = field(default_factory=list)
    message_ids: list[bytes] = field(default_factory=list)

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    def secrets(self) -> list[str]:
        """Strings no console page may contain."""
        found = [*self.case_refs, *people_names()]
        for message_id in self.message_ids:
            found += [message_id.hex(), base64.b64encode(message_id).decode().rstrip("=")]
            found.append(base64.urlsafe_b64encode(message_id).decode().rstrip("="))
        return found

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the SQLite store directly: the numbers the console must show."""
        path = self.hub.directory / "hub.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return connection.execute(query, params).fetchall()


def people_names() -> set[str]:
    """Every person's name in the purposes' example bodies (what the demo sends)."""
    names: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str) and key in {"given_name", "family_name", "name"}:
            names.update(part for part in value.split() if len(part) > 2)

    for tag in CATALOGUE:
        walk(msgspec.to_builtins(example_body(tag)))
    return names


def create(folder: Path, dsn: str | None = None, locale: str = "nl") -> DemoCell:
    """The cell, configured with a console in ``locale`` and one operator; not started."""
    hub = HubProcess.create(folder, dict(ROLES), dsn=dsn)
    console_port = free_port()
    text = hub.config_path.read_text()
    hub.config_path.write_text(text.replace("[hub]\n", f'[hub]\nlocale = "{locale}"\n', 1))
    with hub.config_path.open("a") as config:
        config.write(f'\n[console]\nport = {console_port}\noperators_file = "operators.json"\n')
    add_operator(folder / "operators.json", OPERATOR, PASSWORD)
    return DemoCell(hub, console_port)


def populate(cell: DemoCell) -> None:
    """Cases, traffic, refusals and a revocation, through the hub's API (it must be running)."""
    asyncio.run(_populate(cell))
    config = cell.hub.config
    root = read_root_key(cell.hub.directory / "root.secret", ROOT_PASSPHRASE.encode())

    async def revoke() -> None:
        async with operator.opened(config) as store:
            await operator.revoke(
                store, config, root, "ocmw", reason="left the cell", at=int(time.time()) - 5
            )

    asyncio.run(revoke())


async def _populate(cell: DemoCell) -> None:
    hub = cell.hub
    async with aiohttp.ClientSession() as session:
        coord = hub.client("coord", session)
        for _ in range(2):
            case_ref = mint_case_ref(os.urandom)
            cell.case_refs.append(case_ref)
            await _send(cell, session, case_ref, REFERRAL)
            await coord.change_members(case_ref, add=["io-politie", "caw", "clb", "ocmw"])
            await coord.move_case(case_ref, "in_screening")
            await _send(cell, session, case_ref, SCREENING)
        await coord.move_case(cell.case_refs[0], "afgesloten", "geen_radicaliseringsrisico")
        for sender in ("caw", "caw", "school"):
            with contextlib.suppress(HubRefused):
                await hub.client(sender, session).submit(b"not an envelope")
        answer = _body("screening_antwoord")  # the school was never asked: not its purpose
        envelope = hub.seal("school", ["coord"], answer, "screening_antwoord", cell.case_refs[1])
        with contextlib.suppress(HubRefused):
            await hub.client("school", session).submit(envelope)


async def _send(
    cell: DemoCell,
    session: aiohttp.ClientSession,
    case_ref: str,
    traffic: tuple[tuple[str, list[str], str], ...],
) -> None:
    for sender, recipients, purpose in traffic:
        envelope = cell.hub.seal(sender, recipients, _body(purpose), purpose, case_ref)
        receipt = await cell.hub.client(sender, session).submit(envelope)
        cell.message_ids.append(bytes.fromhex(receipt["message_id"]))


def _body(purpose: str) -> bytes:
    return msgspec.json.encode(example_body(purpose))
