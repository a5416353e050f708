"""Schemathesis against specs/gateway-api.yaml and a running gateway: no 5xx, answers as documented.

A real hub runs in its own process with a cell of four enrolled gateways; the coordinator's
gateway (it reaches every operation, the case registry included) runs with its local API on a
loopback port in a background event loop, and every request schemathesis sends carries its
bearer token. Generation is deterministic and bounded (examples, coverage and fuzzing phases;
positive and negative data). Long polls are capped at a fraction of a second for the run, so a
generated `wait=30` does not stall it; the answer is the same empty page, only sooner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
import pytest
import requests
import schemathesis
from gateway_harness import SPEC_PATH, GatewayCell, RunningGateways
from hypothesis import strategies as st
from requests.auth import AuthBase
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from livcr_exchange.attachments import MediaType
from livcr_exchange.document_examples import jpeg, odf, pdf, png
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import CATALOGUE, encode_body

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
# The upload route takes raw documents: schemathesis cannot make them from a schema, so it
# is given real samples of each type (the gateway checks their content), and arbitrary bytes.
SAMPLES = {
    MediaType.PDF: [pdf(), pdf("Verslag van het overleg")],
    MediaType.ODT: [odf(MediaType.ODT)],
    MediaType.ODS: [odf(MediaType.ODS)],
    MediaType.PNG: [png()],
    MediaType.JPEG: [jpeg()],
}
for media_type, samples in SAMPLES.items():
    schemathesis.openapi.media_type(
        media_type.value, st.one_of(st.sampled_from(samples), st.binary(max_size=64))
    )

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20_302,
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
schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)


class Bearer(AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@dataclass
class RunningAPI:
    url: str
    session: requests.Session
    auth: Bearer


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPI]:
    cell = GatewayCell.create(tmp_path_factory.mktemp("gateway-schemathesis"))
    try:
        running = RunningGateways(cell, ["coord"], long_poll_cap=0.05, send_timeout=10)
        try:
            coord = running["coord"]
            yield RunningAPI(coord.url, coord.session, Bearer(coord.token))
        finally:
            running.close()
    finally:
        cell.hub.stop()


@schema.parametrize()
def test_gateway_api_conforms(case: schemathesis.Case, api: RunningAPI) -> None:
    response = case.call(base_url=api.url, session=api.session, headers=api.auth.headers)
    case.validate_response(response, checks=CHECKS)


def test_token_is_accepted(api: RunningAPI) -> None:
    """Guard: the fuzzing above is worth little if every request were refused as unauthenticated."""
    response = api.session.get(f"{api.url}/v1/status", auth=api.auth, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["participant"] == "coord"


@pytest.mark.parametrize("tag", sorted(CATALOGUE))
def test_the_send_schema_takes_each_purpose_body_from_specs_schemas(tag: str) -> None:
    """The body schemathesis generates for POST /v1/messages is the oneOf of specs/schemas/:
    each purpose's example is valid there, and the same body with an unknown field is not."""
    body_schema = schema["/v1/messages"]["POST"].body[0]
    example = msgspec.json.decode(encode_body(example_body(tag)))
    request = {"case_ref": "case-7f3a9c2e", "purpose": tag, "to": ["coord"], "body": example}
    assert body_schema.is_valid(request)
    assert not body_schema.is_valid({**request, "body": {**example, "unknown": 1}})
    other = "aanmelding" if tag != "aanmelding" else "afsluiting"
    assert not body_schema.is_valid({**request, "body": {**example, "purpose": other}})
