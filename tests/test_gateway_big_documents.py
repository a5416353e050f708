"""Big documents gateway to gateway through a real hub: a 3 MB scan and a 64 MiB file arrive
intact (256 MiB in the slow run), and a small message sent after each arrives without waiting
for it: the hub's push carries notices, and a large envelope is fetched beside the stream."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest
from gateway_harness import GatewayCell, RunningGateway, RunningGateways
from test_gateway_api import call, cursor
from test_gateway_documents import download, met_case, send_minutes, upload

from livcr_exchange.document_examples import pdf

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayCell]:
    cell = GatewayCell.create(tmp_path_factory.mktemp("gateway-big-documents"))
    try:
        yield cell
    finally:
        cell.hub.stop()


def pdf_of(size: int, label: str) -> bytes:
    """A valid PDF of about ``size`` bytes (its page's text is long)."""
    filler = (label + " ") * (size // (len(label) + 1))
    return pdf(filler[: max(0, size - 600)])


def arrived(gw: RunningGateway, after: int, message_id: str, timeout: float) -> dict[str, object]:
    """Long-poll from ``after`` until ``message_id`` is in the dossier (a deadline, no pause)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = call(gw, "GET", "/v1/messages", 200, params={"after": after, "wait": 5})
        for message in page["messages"]:
            if message["message_id"] == message_id:
                return dict(message)
        after = page["next_after"]
    raise AssertionError(f"{gw.participant_id} did not receive {message_id}")


def send_big_then_small(cell: GatewayCell, sizes: list[int]) -> None:
    gws = RunningGateways(cell, ["coord", "caw", "clb", "politie"])
    try:
        coord, caw = gws["coord"], gws["caw"]
        after = cursor(caw)
        case_ref = met_case(gws)
        files = [pdf_of(size, f"document {n}") for n, size in enumerate(sizes)]
        ids = [
            upload(coord, f"bijlage-{n}.pdf", "application/pdf", data)["attachment_id"]
            for n, data in enumerate(files)
        ]
        big = send_minutes(coord, case_ref, ids)["message_id"]
        small = send_minutes(coord, case_ref, [])["message_id"]
        # The small one does not wait for the big one's transfer.
        arrived(caw, after, small, timeout=60)
        message = arrived(caw, after, big, timeout=600)
        assert [a["size"] for a in message["attachments"]] == [len(f) for f in files]  # type: ignore[attr-defined]
        for n, data in enumerate(files):
            response = download(caw, big, n)
            assert response.status_code == 200
            assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()
    finally:
        gws.close()


def test_a_3_mb_and_a_64_mib_document_arrive_intact_and_block_nothing(cell: GatewayCell) -> None:
    send_big_then_small(cell, [3 * 1000 * 1000])
    send_big_then_small(cell, [64 * MIB - 64 * 1024])


@pytest.mark.slow
def test_a_256_mib_envelope_arrives_intact_and_blocks_nothing(cell: GatewayCell) -> None:
    send_big_then_small(cell, [127 * MIB, 127 * MIB - 64 * 1024])
