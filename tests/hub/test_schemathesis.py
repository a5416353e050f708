"""Schemathesis against specs/hub-api.yaml and a real hub: no 5xx, every answer as documented.

The hub runs on a loopback port in a background thread (the real app from ``create_app``, a real
store: once SQLite in a temporary folder, once a PostgreSQL database of its own; the demo cell
enrolled with validity windows around the real clock, since the hub judges request signatures
by its own clock). Every request schemathesis sends is signed as the coordinator over the exact
method, path, query and body it carries, so the hub answers with more than a refusal of the
signature. Generation is deterministic and bounded (examples, coverage and fuzzing phases;
positive and negative data).

A second test drives the success paths the fuzzer cannot reach (a sealed envelope, a batch, the
inbox, a signed delivery receipt) and validates those answers against the same document.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import requests
import schemathesis
from aiohttp import web
from conftest import STORE_KINDS, StoreTarget, new_store_target
from requests.auth import AuthBase
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from hub.app import create_app
from hub.config import HubConfig, HubSection, StoreConfig
from hub.operations import STATEMENT_HASH_LABEL, pending_leaf
from hub.store.base import CaseRecord, WriteBatch
from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.audit.leaves import DirectoryChange, delivery_receipt_message, envelope_hash
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import IdentityKey
from livcr_exchange.request_auth import HubBinding, RequestTarget, sign_request
from livcr_exchange.statements import PrekeyStatement, StatementType
from tests.factories import CASE_REF, MEETING_REF, Cell, DeterministicRandom, det_bytes

SPEC = Path(__file__).resolve().parents[2] / "specs" / "hub-api.yaml"
DAY = 86_400
MAX_EXAMPLES = 25
SIGNER = "coord"  # the coordinator reaches every operation, including the case registry
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20_301,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_path(SPEC, config=CONFIG)


class SignedAs(AuthBase):
    """Sign each prepared request (spec §11.1) over what the hub will verify.

    The hub rebuilds the signature base from the path and the query string exactly as sent,
    percent-encoding included, and from its own cell and origin.
    """

    def __init__(self, participant_id: str, identity: IdentityKey, cell_id: str) -> None:
        self.participant_id = participant_id
        self.identity = identity
        self.hub = HubBinding(cell_id, default_origin(cell_id))
        self.nonces = DeterministicRandom(f"schemathesis nonces {participant_id}")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raw_path, _, raw_query = request.path_url.partition("?")
        body = request.body or b""
        target = RequestTarget(
            str(request.method),
            raw_path,
            raw_query,
            body.encode("utf-8") if isinstance(body, str) else bytes(body),
        )
        request.headers.update(
            sign_request(
                target,
                self.participant_id,
                self.identity,
                hub=self.hub,
                now=int(time.time()),
                random=self.nonces,
            )
        )
        return request


@dataclass
class RunningHub:
    url: str
    cell: Cell
    session: requests.Session
    auth: SignedAs


async def _seed(target: StoreTarget, cell: Cell, now: int) -> None:
    """Enrol the demo cell (entries valid around ``now``), its prekeys, and one open case."""
    batch = WriteBatch()
    for pid, member in cell.participants.items():
        signed = cell.entry(pid, not_before=now - DAY, not_after=now + 365 * DAY).sign(cell.root)
        batch.statements.append(("entry", pid, signed))
        batch.leaves.append(_directory_leaf(now, StatementType.DIRECTORY_ENTRY, pid, signed))
        for secret in member.prekey_secrets.values():
            statement = PrekeyStatement(
                pid, member.identity.key_id, secret.public, now - DAY, now + 6 * DAY
            ).sign(member.identity)
            batch.prekeys.append((pid, secret.public.key_id, statement, now - DAY, now + 6 * DAY))
            batch.leaves.append(_directory_leaf(now, StatementType.PREKEY, pid, statement))
    batch.cases.append(
        CaseRecord(
            CASE_REF,
            "in_screening",
            None,
            None,
            frozenset({"coord", "caw", "clb"}),
            {MEETING_REF: frozenset({"coord", "caw"})},
            now,
            None,
            None,
        )
    )
    store = target.new()
    await store.open()
    try:
        await store.commit(batch)
    finally:
        await store.close()


def _directory_leaf(now: int, kind: StatementType, pid: str, signed: bytes) -> Any:
    return pending_leaf(
        DirectoryChange(now, os.urandom(16), kind, pid, labelled_hash(STATEMENT_HASH_LABEL, signed))
    )


async def _start(target: StoreTarget, folder: Path, cell: Cell) -> tuple[web.AppRunner, str]:
    await _seed(target, cell, int(time.time()))
    store = (
        StoreConfig(kind="postgresql", dsn=target.dsn or "")
        if target.kind == "postgresql"
        else StoreConfig(path=str(target.path))
    )
    config = HubConfig(
        hub=HubSection(cell_id=cell.cell_id, root_key=cell.root.public.to_text()),
        store=store,
        base_dir=str(folder),
    )
    app = create_app(
        config,
        store=target.new(),
        log_key=IdentityKey.from_seed(det_bytes("schemathesis log key", 32)),
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture(scope="module", params=STORE_KINDS)
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    folder = tmp_path_factory.mktemp("hub")
    with new_store_target(request.param, folder) as target:
        yield from _serve(target, folder)


def _serve(target: StoreTarget, folder: Path) -> Iterator[RunningHub]:
    cell = Cell.build()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hub-under-test", daemon=True)
    thread.start()

    def run(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    runner, url = run(_start(target, folder, cell))
    session = requests.Session()
    try:
        yield RunningHub(url, cell, session, SignedAs(SIGNER, cell.identity(SIGNER), cell.cell_id))
    finally:
        session.close()
        run(runner.cleanup())
        run(loop.shutdown_asyncgens())
        run(loop.shutdown_default_executor())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@schema.parametrize()
def test_hub_api_conforms(case: schemathesis.Case, hub: RunningHub) -> None:
    response = case.call(base_url=hub.url, session=hub.session, auth=hub.auth)
    case.validate_response(response, checks=CHECKS)


def test_signer_is_accepted(hub: RunningHub) -> None:
    """Guard: the fuzzing above is worth little if the hub refused every signature."""
    response = hub.session.get(
        f"{hub.url}/v1/prekeys", params={"ids": "coord,caw"}, auth=hub.auth, timeout=10
    )
    assert response.status_code == 200, response.text
    assert sorted(response.json()["prekeys"]) == ["caw", "coord"]


def _validate(method: str, path: str, response: requests.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    schema[path][method].validate_response(response)
    return response.json()


def test_success_shapes_conform(hub: RunningHub) -> None:
    """Receipts, batch results, inbox pages and acknowledgements, as the document says."""
    cell, now = hub.cell, int(time.time())
    caw = SignedAs("caw", cell.identity("caw"), cell.cell_id)

    def post(path: str, body: bytes, auth: SignedAs, content_type: str) -> requests.Response:
        return hub.session.post(
            hub.url + path,
            data=body,
            headers={"Content-Type": content_type},
            auth=auth,
            timeout=10,
        )

    referral = cell.seal_to(
        ["coord"],
        b"{}",
        sender="caw",
        now=now,
        purpose="aanmelding",
        case_ref="case-oscli7dvirzqzpuovnr4fc75zu",
    )
    receipt = _validate(
        "POST",
        "/v1/envelopes",
        post("/v1/envelopes", referral, caw, "application/octet-stream"),
        201,
    )
    again = _validate(  # the same bytes again: their original receipt (spec §9.3)
        "POST",
        "/v1/envelopes",
        post("/v1/envelopes", referral, caw, "application/octet-stream"),
        200,
    )
    assert again["leaf_index"] == receipt["leaf_index"]
    second = cell.seal_to(
        ["coord"],
        b"{}",
        sender="caw",
        now=now,
        purpose="aanmelding",
        case_ref="case-osjq336xve6q5g7wng22jg5kpa",
    )
    batch = msgspec.json.encode(
        {"envelopes": [base64.b64encode(e).decode() for e in (second, referral)]}
    )
    results = _validate(
        "POST",
        "/v1/envelopes/batch",
        post("/v1/envelopes/batch", batch, caw, "application/json"),
        200,
    )["results"]
    assert [r["accepted_before"] for r in results] == [False, True]
    assert results[1]["receipt"]["leaf_index"] == receipt["leaf_index"]

    page = _validate(
        "GET",
        "/v1/inbox",
        hub.session.get(f"{hub.url}/v1/inbox", auth=hub.auth, timeout=10),
        200,
    )
    delivered = {item["message_id"]: item for item in page["deliveries"]}
    item = delivered[receipt["message_id"]]
    fetched = hub.session.get(
        f"{hub.url}/v1/deliveries/{item['message_id']}", auth=hub.auth, timeout=10
    )
    assert fetched.status_code == 200, fetched.text
    schema["/v1/deliveries/{message_id}"]["GET"].validate_response(fetched)
    envelope = fetched.content
    received_at = now + 1
    signature = cell.identity("coord").sign(
        delivery_receipt_message(
            bytes.fromhex(item["message_id"]),
            envelope_hash(envelope),
            "coord",
            received_at,
        )
    )
    ack = msgspec.json.encode(
        {
            "receipts": [
                {
                    "message_id": item["message_id"],
                    "received_at": received_at,
                    "signature": base64.b64encode(signature).decode(),
                },
                {"message_id": "00" * 16, "received_at": received_at, "signature": ""},
            ]
        }
    )
    answer = _validate(
        "POST", "/v1/inbox/ack", post("/v1/inbox/ack", ack, hub.auth, "application/json"), 200
    )
    assert answer["acknowledged"] == 1
    assert answer["unknown"] == ["00" * 16]
