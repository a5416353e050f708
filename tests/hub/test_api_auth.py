"""Request signatures (spec §11.1) and request limits: every refusal comes before any handler runs,
so nothing is written, not even a log leaf (there is nobody authenticated to attribute it to)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import hub_harness
import pytest
from factories import DAY, NOW
from hub_harness import (
    CELL_ID,
    HUB_BINDING,
    MAX_REQUEST_BYTES,
    ORIGIN,
    OUTSIDER,
    REVOKED,
    HubHarness,
)
from structlog.testing import capture_logs
from yarl import URL

from hub.store.base import WriteBatch
from livcr_exchange.request_auth import (
    HubBinding,
    RequestTarget,
    content_digest,
    sign_request,
    signature_base,
    signature_params,
)
from livcr_exchange.service.problems import PROBLEM_TYPE

# The fixtures `clock` and `harness` (see hub_harness on why there is no conftest here).
clock_fixture = hub_harness.clock_fixture
harness_fixture = hub_harness.harness_fixture

INBOX = "/v1/inbox"


async def send(
    harness: HubHarness,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    query: str = "",
    body: bytes = b"",
) -> tuple[int, dict[str, Any]]:
    """One raw request, sent byte for byte as given; returns the status and the JSON answer."""
    url = URL(harness.url + path + (f"?{query}" if query else ""), encoded=True)
    async with harness.session.request(method, url, data=body, headers=headers) as response:
        if response.content_type == PROBLEM_TYPE:
            return response.status, await response.json(content_type=PROBLEM_TYPE)
        return response.status, await response.json()


async def expect_refusal(
    harness: HubHarness,
    headers: dict[str, str],
    status: int,
    code: str,
    *,
    method: str = "GET",
    path: str = INBOX,
    query: str = "",
    body: bytes = b"",
) -> None:
    before = await harness.snapshot()
    with capture_logs() as events:
        answer = await send(harness, method, path, headers, query=query, body=body)
    assert answer[0] == status
    assert (answer[1]["status"], answer[1]["code"]) == (status, code)
    await harness.assert_unchanged(before)
    (access,) = [e for e in events if e["event"] == "request"]
    assert (access["status"], access["participant"]) == (status, None)
    assert not [e for e in events if e["event"] == "refusal"]  # no audit: nobody authenticated


def forged_headers(
    harness: HubHarness, claimed: str, signer: str, target: RequestTarget
) -> dict[str, str]:
    """Headers that name ``claimed`` and its key id, signed by ``signer``'s key."""
    params = signature_params(
        harness.clock(), harness.identity(claimed).key_id, bytes(range(16)), HUB_BINDING
    )
    signature = harness.identity(signer).sign(signature_base(target, claimed, params))
    return {
        "Content-Digest": content_digest(target.body),
        "Livcr-Participant": claimed,
        "Signature-Input": f"sig1={params}",
        "Signature": "sig1=:" + base64.b64encode(signature).decode() + ":",
    }


async def test_a_signed_request_is_answered(harness: HubHarness) -> None:
    status, answer = await send(harness, "GET", INBOX, harness.signed_headers("caw", "GET", INBOX))
    assert (status, answer) == (200, {"deliveries": [], "next_after": 0})


async def test_key_of_another_participant_is_an_unknown_sender(harness: HubHarness) -> None:
    headers = harness.signed_headers("clb", "GET", INBOX)
    headers["Livcr-Participant"] = "caw"  # clb's key id and signature, claiming to be caw
    await expect_refusal(harness, headers, 403, "unknown_sender")


async def test_signature_by_the_wrong_key_is_a_bad_signature(harness: HubHarness) -> None:
    headers = forged_headers(harness, "caw", "clb", RequestTarget("GET", INBOX, "", b""))
    await expect_refusal(harness, headers, 401, "bad_signature")


async def test_participant_not_enrolled_is_an_unknown_sender(harness: HubHarness) -> None:
    await expect_refusal(
        harness, harness.signed_headers(OUTSIDER, "GET", INBOX), 403, "unknown_sender"
    )


async def test_participant_enrolled_by_another_process_is_known_at_once(
    harness: HubHarness,
) -> None:
    """`livcr hub enrol` writes to the store from its own process; the hub's cached directory
    does not know the key yet, and looks again before it calls the sender unknown."""
    await send(harness, "GET", INBOX, harness.signed_headers("caw", "GET", INBOX))  # warm cache
    entry = harness.entry_statement(harness.people[OUTSIDER])
    await harness.store.commit(WriteBatch(statements=[entry]))  # no refresh_directory()
    status, _ = await send(harness, "GET", INBOX, harness.signed_headers(OUTSIDER, "GET", INBOX))
    assert status == 200


async def test_revoked_participant_is_refused(harness: HubHarness) -> None:
    await expect_refusal(harness, harness.signed_headers(REVOKED, "GET", INBOX), 403, "key_revoked")


async def test_participant_outside_its_entry_window_is_refused(harness: HubHarness) -> None:
    await harness.enrol(harness.people[OUTSIDER], not_before=NOW + DAY, not_after=NOW + 2 * DAY)
    headers = harness.signed_headers(OUTSIDER, "GET", INBOX)
    await expect_refusal(harness, headers, 403, "key_not_valid")
    harness.clock.advance(DAY)
    status, _ = await send(harness, "GET", INBOX, harness.signed_headers(OUTSIDER, "GET", INBOX))
    assert status == 200


@pytest.mark.parametrize("skew", [-301, 301])
async def test_request_created_outside_the_clock_tolerance_is_refused(
    harness: HubHarness, skew: int
) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    harness.clock.advance(-skew)  # the hub's now is |skew| seconds away from `created`
    await expect_refusal(harness, headers, 400, "timestamp_out_of_window")


async def test_created_at_the_edge_of_the_tolerance_is_accepted(harness: HubHarness) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    harness.clock.advance(300)
    status, _ = await send(harness, "GET", INBOX, headers)
    assert status == 200


async def test_reused_nonce_is_a_replay(harness: HubHarness) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    assert (await send(harness, "GET", INBOX, headers))[0] == 200
    await expect_refusal(harness, headers, 409, "replayed")


async def test_refused_request_does_not_use_up_its_nonce(harness: HubHarness) -> None:
    """A forgery carrying someone's nonce must not lock the genuine request out."""
    body = b'{"case_ref": "case-sij6mlxxstbvgenwduq6z34pn4", "members": []}'
    headers = harness.signed_headers("coord", "POST", "/v1/cases", body=body)
    await expect_refusal(
        harness, headers, 401, "bad_signature", method="POST", path="/v1/cases", body=b"{}"
    )
    status, case = await send(harness, "POST", "/v1/cases", headers, body=body)
    assert (status, case["case_ref"]) == (201, "case-sij6mlxxstbvgenwduq6z34pn4")


@pytest.mark.parametrize("digest", ["signed", "sent"])
async def test_body_that_is_not_the_signed_one_is_refused(harness: HubHarness, digest: str) -> None:
    signed = b'{"case_ref": "case-5yjf7gvr3tnogwil7xvrk3kjlu", "members": []}'
    sent = b'{"case_ref": "case-z6aczzga7hmhiurz5thcsovcbu", "members": []}'
    headers = harness.signed_headers("coord", "POST", "/v1/cases", body=signed)
    if digest == "sent":  # the digest matches what is sent, the signature does not
        headers["Content-Digest"] = content_digest(sent)
    await expect_refusal(
        harness, headers, 401, "bad_signature", method="POST", path="/v1/cases", body=sent
    )


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [("POST", INBOX, ""), ("GET", "/v1/directory", ""), ("GET", INBOX, "after=1")],
    ids=["method", "path", "query"],
)
async def test_method_path_and_query_are_covered_by_the_signature(
    harness: HubHarness, method: str, path: str, query: str
) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    await expect_refusal(
        harness, headers, 401, "bad_signature", method=method, path=path, query=query
    )


async def test_query_is_verified_as_sent(harness: HubHarness) -> None:
    """``%2C`` and ``,`` decode alike, but only the signed spelling verifies."""
    signed = "ids=caw%2Cclb"
    headers = harness.signed_headers("coord", "GET", "/v1/prekeys", query=signed)
    await expect_refusal(
        harness, headers, 401, "bad_signature", path="/v1/prekeys", query="ids=caw,clb"
    )
    status, answer = await send(harness, "GET", "/v1/prekeys", headers, query=signed)
    assert (status, sorted(answer["prekeys"])) == (200, ["caw", "clb"])


@pytest.mark.parametrize(
    "header", ["Content-Digest", "Livcr-Participant", "Signature-Input", "Signature"]
)
async def test_missing_signature_header_is_refused(harness: HubHarness, header: str) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    del headers[header]
    await expect_refusal(harness, headers, 400, "malformed")


@pytest.mark.parametrize(
    ("header", "change"),
    [
        ("Signature-Input", lambda v: v.replace('"@query" ', "")),  # another component list
        ("Signature-Input", lambda v: v.replace('alg="ed25519"', 'alg="rsa"')),
        ("Signature-Input", lambda v: v + ";expires=1"),
        ("Signature", lambda v: v.replace("sig1=", "sig2=")),
        ("Signature", lambda v: v[:-3] + ":"),  # truncated
        ("Livcr-Participant", lambda _: "Caw"),  # not an ident
    ],
)
async def test_malformed_signature_headers_are_refused(
    harness: HubHarness, header: str, change: Any
) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    headers[header] = change(headers[header])
    await expect_refusal(harness, headers, 400, "malformed")


async def test_unsigned_request_is_refused(harness: HubHarness) -> None:
    await expect_refusal(harness, {}, 400, "malformed")


@pytest.mark.parametrize("signed", [True, False])
async def test_oversized_body_is_refused_before_it_is_read_whole(
    harness: HubHarness, signed: bool
) -> None:
    body = bytes(MAX_REQUEST_BYTES + 1)
    headers = harness.signed_headers("caw", "POST", "/v1/envelopes", body=body) if signed else {}
    await expect_refusal(
        harness, headers, 413, "oversized", method="POST", path="/v1/envelopes", body=body
    )


async def test_public_paths_need_no_signature(harness: HubHarness) -> None:
    for path in ("/healthz", "/v1/log/checkpoint", "/metrics"):
        async with harness.session.get(harness.url + path) as response:
            assert response.status == 200, path


async def test_unknown_route_is_not_found_only_after_authentication(harness: HubHarness) -> None:
    await expect_refusal(harness, {}, 400, "malformed", path="/v1/nothing")
    before = await harness.snapshot()
    headers = harness.signed_headers("caw", "GET", "/v1/nothing")
    status, answer = await send(harness, "GET", "/v1/nothing", headers)
    assert (status, answer["code"]) == (404, "not_found")
    await harness.assert_unchanged(before)
    headers = harness.signed_headers("caw", "DELETE", INBOX)
    url = URL(harness.url + INBOX, encoded=True)
    async with harness.session.request("DELETE", url, headers=headers) as response:
        answer = await response.json(content_type=PROBLEM_TYPE)
        assert (response.status, answer["code"]) == (405, "http_error")
        assert response.headers["Allow"] == "GET,HEAD"  # RFC 9110: a 405 names what is allowed


async def test_revocation_takes_effect_at_its_time_on_the_hubs_clock(harness: HubHarness) -> None:
    await harness.revoke("caw", harness.clock() + 60)
    status, _ = await send(harness, "GET", INBOX, harness.signed_headers("caw", "GET", INBOX))
    assert status == 200
    harness.clock.advance(60)
    await expect_refusal(harness, harness.signed_headers("caw", "GET", INBOX), 403, "key_revoked")


@pytest.mark.parametrize(
    "path",
    [
        "//v1/inbox",
        "/v1/./inbox",
        "/v1/../v1/inbox",
        "/%2Fv1/inbox",
        "/v1%2Finbox",
        "/./v1/inbox",
        "/v1/inbox/",
        "/V1/inbox",
        "/%761/inbox",
        "/v1/log/checkpoint/../../v1/inbox",
        "/v1/log/checkpoint/%2e%2e/%2e%2e/v1/directory",
        "/healthz/../v1/inbox",
        "/metrics/../v1/directory",
        "/v1/log/checkpoint?/../../inbox",
    ],
)
async def test_no_spelling_of_a_path_skips_the_signature(harness: HubHarness, path: str) -> None:
    """Sent raw, so no client normalises the path first; nothing unsigned may succeed."""
    before = await harness.snapshot()
    reader, writer = await asyncio.open_connection(harness.server.host, harness.server.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = (await reader.readline()).decode()
        await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(status_line.split()[1])
    if path.startswith("/v1/log/checkpoint?"):
        assert status == 200  # the public checkpoint, with a query it ignores
    else:
        assert status in {400, 404}, status_line
    await harness.assert_unchanged(before)


@pytest.mark.parametrize(
    "other",
    [HubBinding("cell-b", ORIGIN), HubBinding(CELL_ID, "hub-b.example/livcr")],
    ids=["other-cell", "other-origin"],
)
async def test_a_request_signed_for_another_hub_is_refused(
    harness: HubHarness, other: HubBinding
) -> None:
    """A participant enrolled in two cells (or known to two hubs of one cell) signs for one hub;
    the other hub refuses the request: its own cell and origin are in the signature base."""
    target = RequestTarget("GET", INBOX, "", b"")
    identity = harness.identity("caw")
    headers = sign_request(
        target, "caw", identity, hub=other, now=harness.clock(), random=harness.random
    )
    await expect_refusal(harness, headers, 401, "bad_signature")
    # Rewriting the parameters to name this hub breaks the signature instead.
    headers["Signature-Input"] = (
        headers["Signature-Input"]
        .replace(f'cell="{other.cell_id}"', f'cell="{CELL_ID}"')
        .replace(f'origin="{other.origin}"', f'origin="{ORIGIN}"')
    )
    await expect_refusal(harness, headers, 401, "bad_signature")


async def test_a_percent_encoded_path_is_verified_as_sent(harness: HubHarness) -> None:
    """@path is the path as sent: a client that signs the encoded spelling it sends is heard,
    and the decoded spelling of the same path is another @path."""
    encoded = "/v1/%69nbox"
    headers = harness.signed_headers("caw", "GET", encoded)
    assert (await send(harness, "GET", encoded, headers))[0] == 200
    headers = harness.signed_headers("caw", "GET", INBOX)
    await expect_refusal(harness, headers, 401, "bad_signature", path=encoded)


@pytest.mark.parametrize(
    "change",
    [
        lambda v: v + ", sha-512=:" + base64.b64encode(bytes(64)).decode() + ":",
        lambda v: v.replace("sha-256", "SHA-256"),
        lambda v: v.replace("=:", "= :", 1),
    ],
    ids=["two-members", "upper-case", "inner-space"],
)
async def test_content_digest_is_exactly_one_sha256_member(
    harness: HubHarness, change: Any
) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    headers["Content-Digest"] = change(headers["Content-Digest"])
    await expect_refusal(harness, headers, 400, "malformed")


async def test_an_upper_case_key_id_is_malformed(harness: HubHarness) -> None:
    headers = harness.signed_headers("caw", "GET", INBOX)
    key_id = harness.identity("caw").key_id.hex()
    headers["Signature-Input"] = headers["Signature-Input"].replace(key_id, key_id.upper())
    await expect_refusal(harness, headers, 400, "malformed")
