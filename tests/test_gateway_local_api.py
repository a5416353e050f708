"""The local API's guards and operator views: the Host check (421), JSON nested too deep (400 or
422, never 500), a client that goes away (its fault, not the hub's), the Idempotency-Key of a
send, readiness, metrics, a case as the hub reports it, and the outbox's failed messages kept
until retried or discarded."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from factories import case_ref
from gateway_harness import GatewayCell, RunningGateway, RunningGateways, load_spec
from structlog.testing import capture_logs
from waiting import wait_until

from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import encode_body
from livcr_exchange.roles import Role

SPEC = load_spec()
ROLES = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER}
REFERRAL = msgspec.json.decode(encode_body(example_body("aanmelding")))
ANSWER = msgspec.json.decode(encode_body(example_body("screening_antwoord")))
DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayCell]:
    cell = GatewayCell.create(tmp_path_factory.mktemp("gateway-local-api"), ROLES)
    try:
        yield cell
    finally:
        cell.hub.stop()


@pytest.fixture(scope="module")
def gws(cell: GatewayCell) -> Iterator[RunningGateways]:
    running = RunningGateways(cell, list(ROLES))
    try:
        yield running
    finally:
        running.close()


def call(gw: RunningGateway, method: str, route: str, status: int, **kwargs: Any) -> Any:
    path = route.replace("{case_ref}", kwargs.pop("case_ref", "")).replace(
        "{message_id}", kwargs.pop("message_id", "")
    )
    response = gw.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    SPEC[route][method].validate_response(response)
    return response.json() if response.content else None


def wait_for(what: str, condition: Any, timeout: float = 20) -> None:
    wait_until(condition, what, timeout)


def referral(case_ref: str) -> dict[str, Any]:
    return {"case_ref": case_ref, "purpose": "aanmelding", "to": ["coord"], "body": REFERRAL}


# The Host check.
@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:80", "127.0.0.2"])
def test_a_host_that_is_not_the_listener_is_421(gws: RunningGateways, host: str) -> None:
    problem = call(gws["caw"], "GET", "/v1/status", 421, headers={"Host": host})
    assert problem["code"] == "misdirected_request"
    problem = call(gws["caw"], "GET", "/healthz", 421, headers={"Host": host})
    assert problem["code"] == "misdirected_request"


def test_the_listeners_own_names_are_served(gws: RunningGateways) -> None:
    port = urlsplit(gws["caw"].url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        call(gws["caw"], "GET", "/v1/status", 200, headers={"Host": host})


# JSON nested too deep.
def test_json_nested_too_deep_is_refused_not_a_server_error(gws: RunningGateways) -> None:
    caw = gws["caw"]
    before = call(caw, "GET", "/v1/status", 200)["dossier_records"]
    headers = {"Content-Type": "application/json"}
    whole = call(caw, "POST", "/v1/messages", 400, data=DEEP, headers=headers)
    assert whole["code"] == "malformed"
    inside = (
        '{"case_ref":"case-3hn7cyxoew762vdrdql35yppca","purpose":"aanmelding","to":["coord"],"body":'
        + DEEP
        + "}"
    )
    problem = call(caw, "POST", "/v1/messages", 400, data=inside, headers=headers)
    assert problem["code"] == "malformed"
    in_body = (
        '{"case_ref":"case-3hn7cyxoew762vdrdql35yppca","purpose":"aanmelding","to":["coord"],'
        '"body":{"x":' + "[" * 1200 + "]" * 1200 + ',"purpose":"aanmelding"}}'
    )
    problem = call(caw, "POST", "/v1/messages", 400, data=in_body, headers=headers)
    assert problem["code"] == "malformed"
    assert call(caw, "GET", "/v1/status", 200)["dossier_records"] == before


# A client that goes away.
def test_a_client_that_goes_away_is_not_blamed_on_the_hub(gws: RunningGateways) -> None:
    caw = gws["caw"]
    address = urlsplit(caw.url)
    with capture_logs() as events:
        with socket.create_connection((address.hostname, address.port), timeout=20) as client:
            client.sendall(
                (
                    f"POST /v1/messages HTTP/1.1\r\nHost: {address.netloc}\r\n"
                    f"Authorization: Bearer {caw.token}\r\nContent-Type: application/json\r\n"
                    "Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n"
                ).encode()
            )
            # The server answers 100 Continue once it has routed the request to its handler:
            # from then on the handler is reading the body when the client leaves.
            assert client.recv(64).startswith(b"HTTP/1.1 100 Continue"), "no 100 Continue"
            client.sendall(b"{")
        wait_for("the request's log line", lambda: any(e["event"] == "request" for e in events))
    assert not [e for e in events if e.get("code") == "hub_unavailable"], events
    assert any(e["event"] == "the client went away" for e in events), events
    # The access line (one middleware for hub and gateway) says so too: 499, not a 500.
    assert [e["status"] for e in events if e["event"] == "request"] == [499], events


# Idempotency-Key.
def test_an_idempotency_key_sends_once(gws: RunningGateways) -> None:
    caw, coord = gws["caw"], gws["coord"]
    request = referral(case_ref("idempotent"))
    key = {"Idempotency-Key": "retry-1"}
    first = call(caw, "POST", "/v1/messages", 201, json=request, headers=key)
    again = call(caw, "POST", "/v1/messages", 201, json=request, headers=key)
    assert again == first
    other = call(caw, "POST", "/v1/messages", 422, json=referral(case_ref("other")), headers=key)
    assert other["code"] == "idempotency_key_reused"
    records = call(caw, "GET", "/v1/dossier", 200, params={"case_ref": case_ref("idempotent")})
    assert [r["message_id"] for r in records["records"]] == [first["message_id"]]
    wait_for(
        "delivered once",
        lambda: (
            [
                r["message_id"]
                for r in call(
                    coord, "GET", "/v1/dossier", 200, params={"case_ref": case_ref("idempotent")}
                )["records"]
            ]
            == [first["message_id"]]
        ),
    )
    queued = {**referral(case_ref("idempotent-2")), "wait": False}
    key = {"Idempotency-Key": "retry-2"}
    answer = call(caw, "POST", "/v1/messages", 202, json=queued, headers=key)
    repeated = gws["caw"].request("POST", "/v1/messages", json=queued, headers=key)
    assert repeated.status_code in {201, 202}
    assert repeated.json()["message_id"] == answer["message_id"]


def test_a_bad_idempotency_key_is_malformed(gws: RunningGateways) -> None:
    headers = {"Idempotency-Key": "x" * 300}
    problem = call(gws["caw"], "POST", "/v1/messages", 400, json=referral("c"), headers=headers)
    assert problem["code"] == "malformed"


# Readiness, metrics, a case.
def test_readyz_and_metrics(gws: RunningGateways) -> None:
    caw = gws["caw"]
    response = caw.session.get(caw.url + "/readyz", timeout=10)  # no token needed
    assert response.status_code == 200
    assert response.json() == {"ready": True, "degraded": []}
    caw.gateway.ctx.halted = "test: halted"
    try:
        assert caw.session.get(caw.url + "/readyz", timeout=10).status_code == 503
    finally:
        caw.gateway.ctx.halted = None
    assert caw.session.get(caw.url + "/metrics", timeout=10).status_code == 401
    text = caw.request("GET", "/metrics").text
    assert "livcr_gateway_connected 1" in text
    assert "livcr_gateway_outbox_pending " in text
    assert "# TYPE livcr_gateway_task_restarts_total counter" in text


def test_a_case_as_the_hub_reports_it(gws: RunningGateways) -> None:
    coord = gws["coord"]
    opened = call(coord, "POST", "/v1/cases", 201, json={"members": ["caw"]})
    case = call(coord, "GET", "/v1/cases/{case_ref}", 200, case_ref=opened["case_ref"])
    assert (case["state"], case["members"]) == ("signaal_ontvangen", ["caw", "coord"])
    problem = call(
        gws["caw"], "GET", "/v1/cases/{case_ref}", 404, case_ref=case_ref("nobody-knows")
    )
    assert problem["code"] == "not_found"


# The outbox keeps what fails.
def test_a_refused_message_is_kept_until_retried_or_discarded(gws: RunningGateways) -> None:
    """An answer on a case the hub does not know is refused for good (case_state_forbids): the
    message stays, with its code, listed as failed; a retry fails again; a discard ends it."""
    caw = gws["caw"]
    request = {
        "case_ref": case_ref("unknown"),
        "purpose": "screening_antwoord",
        "to": ["coord"],
        "body": ANSWER,
    }
    problem = call(caw, "POST", "/v1/messages", 409, json=request)
    assert problem["code"] == "case_state_forbids"
    failed = call(caw, "GET", "/v1/outbox", 200, params={"state": "failed"})["messages"]
    (row,) = [m for m in failed if m["case_ref"] == case_ref("unknown")]
    assert (row["state"], row["code"]) == ("failed", "case_state_forbids")
    assert call(caw, "GET", "/v1/status", 200)["outbox_failed"] >= 1
    message_id = row["message_id"]
    route = "/v1/outbox/{message_id}/retry"
    assert call(caw, "POST", route, 200, message_id=message_id) == {"state": "pending"}

    def state() -> str:
        listing = call(caw, "GET", "/v1/outbox", 200, params={"state": "pending,failed"})
        return next(m["state"] for m in listing["messages"] if m["message_id"] == message_id)

    wait_for("refused again", lambda: state() == "failed")
    route = "/v1/outbox/{message_id}/discard"
    assert call(caw, "POST", route, 200, message_id=message_id) == {"state": "discarded"}
    assert call(caw, "POST", route, 404, message_id=message_id)["code"] == "not_found"
    listing = call(caw, "GET", "/v1/outbox", 200, params={"state": "discarded"})["messages"]
    assert message_id in {m["message_id"] for m in listing}
    records = call(caw, "GET", "/v1/dossier", 200, params={"case_ref": case_ref("unknown")})[
        "records"
    ]
    assert records == []
