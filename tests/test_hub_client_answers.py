"""The HubClient decodes every hub answer with its type: an answer that breaks the contract is
``HubAnswerInvalid`` (code ``hub_answer_invalid``, counted as no answer), never a KeyError or
a half-read dict further on.

A stand-in hub answers each route with what a test sets: the valid document, or one with a
field missing, of the wrong type, an unknown field, no JSON at all, or a wrong status.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from factories import Cell as KeyCell

from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.request_auth import HubBinding
from livcr_exchange.service.hub_client import HubAnswerInvalid, HubClient, HubRefused

PROOF = [base64.b64encode(b"\x01" * 32).decode()]
ENVELOPE = base64.b64encode(b"envelope").decode()
CASE = {
    "case_ref": "case-1",
    "state": "signaal_ontvangen",
    "owner": None,
    "referrer": "caw",
    "members": ["caw"],
    "meetings": {},
}
ITEM = {"seq": 1, "message_id": "ab" * 16, "logged_at": 5, "leaf_index": 3, "size": 8}
RECEIPT = {
    "message_id": "ab" * 16,
    "leaf_index": 3,
    "logged_at": 5,
    "salt": "cd" * 16,
    "tree_size": 4,
    "checkpoint": "note",
    "inclusion_proof": PROOF,
}

# route -> (method, path, status of a valid answer, valid document, a field to break)
ROUTES: dict[str, tuple[str, str, int, dict[str, Any], str]] = {
    "submit": ("POST", "/v1/envelopes", 201, RECEIPT, "logged_at"),
    "submit_batch": (
        "POST",
        "/v1/envelopes/batch",
        200,
        {"results": [{"receipt": RECEIPT, "accepted_before": False}]},
        "results",
    ),
    "inbox": ("GET", "/v1/inbox", 200, {"deliveries": [ITEM], "next_after": 1}, "next_after"),
    "ack": (
        "POST",
        "/v1/inbox/ack",
        200,
        {"acknowledged": 1, "leaf_indexes": [7], "unknown": []},
        "acknowledged",
    ),
    "directory": (
        "GET",
        "/v1/directory",
        200,
        {"cell_id": "c", "root_key": "k", "entries": [], "revocations": []},
        "entries",
    ),
    "prekeys": ("GET", "/v1/prekeys", 200, {"prekeys": {"caw": [ENVELOPE]}}, "prekeys"),
    "put_prekeys": ("PUT", "/v1/prekeys", 200, {"stored": 1}, "stored"),
    "case": ("GET", "/v1/cases/case-1", 200, CASE, "state"),
    "open_case": ("POST", "/v1/cases", 201, CASE, "members"),
    "move_case": ("POST", "/v1/cases/case-1/transition", 200, CASE, "state"),
    "consistency": (
        "GET",
        "/v1/log/consistency",
        200,
        {"old": 1, "new": 2, "proof": PROOF},
        "proof",
    ),
    "inclusion": (
        "GET",
        "/v1/log/inclusion",
        200,
        {"index": 1, "size": 2, "proof": PROOF},
        "proof",
    ),
}
CALLS: dict[str, Callable[[HubClient], Awaitable[object]]] = {
    "submit": lambda c: c.submit(b"envelope"),
    "submit_batch": lambda c: c.submit_batch([b"envelope"]),
    "inbox": lambda c: c.inbox(),
    "ack": lambda c: c.ack([(b"\xab" * 16, 5, b"\x00" * 64)]),
    "directory": lambda c: c.directory(),
    "prekeys": lambda c: c.prekeys(["caw"]),
    "put_prekeys": lambda c: c.put_prekeys([b"statement"]),
    "case": lambda c: c.case("case-1"),
    "open_case": lambda c: c.open_case("case-1", ["caw"]),
    "move_case": lambda c: c.move_case("case-1", "in_screening"),
    "consistency": lambda c: c.consistency(1, 2),
    "inclusion": lambda c: c.inclusion(1, 2),
}


def wrong_type(value: object) -> object:
    return "not a number" if isinstance(value, int | list | dict) else 12345


# kind -> how the valid answer is broken: (status, body, content type)
def broken(kind: str, status: int, document: dict[str, Any], key: str) -> tuple[int, bytes, str]:
    changed = dict(document)
    if kind == "missing field":
        del changed[key]
    elif kind == "wrong type":
        changed[key] = wrong_type(changed[key])
    elif kind == "extra field":
        changed["surprise"] = 1
    elif kind == "not JSON":
        return status, b"<html>surprise</html>", "text/html"
    elif kind == "wrong status":
        return (202 if status != 202 else 200), msgspec.json.encode(document), "application/json"
    return status, msgspec.json.encode(changed), "application/json"


KINDS = ("missing field", "wrong type", "extra field", "not JSON", "wrong status")


@dataclass
class StandIn:
    """The stand-in hub's next answer per path."""

    answers: dict[str, tuple[int, bytes, str]] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        status, body, content_type = self.answers[request.path]
        return web.Response(status=status, body=body, content_type=content_type)


@pytest.fixture
async def hub() -> AsyncIterator[tuple[StandIn, HubClient]]:
    stand_in = StandIn()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stand_in.handle)
    server = TestServer(app)
    await server.start_server()
    keys = KeyCell.build()
    async with aiohttp.ClientSession() as session:
        client = HubClient(
            str(server.make_url("")),
            "caw",
            keys.identity("caw"),
            session,
            hub=HubBinding("testcell", default_origin("testcell")),
        )
        try:
            yield stand_in, client
        finally:
            await server.close()


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_valid_answer_decodes(hub: tuple[StandIn, HubClient], route: str) -> None:
    stand_in, client = hub
    _, path, status, document, _ = ROUTES[route]
    stand_in.answers[path] = (status, msgspec.json.encode(document), "application/json")
    assert await CALLS[route](client) is not None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_a_malformed_answer_is_a_coded_error(
    hub: tuple[StandIn, HubClient], route: str, kind: str
) -> None:
    stand_in, client = hub
    _, path, status, document, key = ROUTES[route]
    stand_in.answers[path] = broken(kind, status, document, key)
    with pytest.raises(HubAnswerInvalid) as raised:
        await CALLS[route](client)
    assert raised.value.code == "hub_answer_invalid"
    assert raised.value.status >= 500  # handled by every caller as a hub that did not answer


async def test_a_problem_document_is_the_hubs_refusal(hub: tuple[StandIn, HubClient]) -> None:
    stand_in, client = hub
    problem = {"type": "urn:livcr:error:forbidden", "code": "forbidden", "detail": "no", "x": 1}
    stand_in.answers["/v1/cases/case-1"] = (403, msgspec.json.encode(problem), "application/json")
    with pytest.raises(HubRefused) as raised:
        await client.case("case-1")
    assert (raised.value.status, raised.value.code) == (403, "forbidden")
    stand_in.answers["/v1/cases/case-1"] = (500, b"boom", "text/plain")
    with pytest.raises(HubRefused) as raised:
        await client.case("case-1")
    assert (raised.value.status, raised.value.code) == (500, "http_error")
