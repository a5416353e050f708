"""Documents end to end through a real hub and real gateways: uploaded and checked by content,
sent by reference, received and kept sealed at rest, downloaded as a stream, erased with the
case, kept across a restart; and the embedding API with paths and file objects."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from gateway_harness import GatewayCell, RunningGateway, RunningGateways
from test_gateway_api import MEETING, body, call, cursor, move, new_case, receive

from gateway.context import Message
from gateway.docfiles import MAX_UPLOAD_BYTES
from livcr_exchange.attachments import attachment_digest
from livcr_exchange.document_examples import pdf, png

MINUTES_PDF = pdf("Verslag van het overleg")
PHOTO_PNG = png(4, 4)


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayCell]:
    cell = GatewayCell.create(tmp_path_factory.mktemp("gateway-documents"))
    try:
        yield cell
    finally:
        cell.hub.stop()


def met_case(gws: RunningGateways) -> str:
    """A case whose meeting was held with coord, caw and politie present: minutes may go."""
    case_ref = new_case(gws, ["caw", "clb", "politie"])
    for state in ("in_screening", "geagendeerd", "besproken"):
        move(gws, case_ref, state)
    call(
        gws["coord"],
        "POST",
        "/v1/cases/{case_ref}/meetings",
        201,
        case_ref=case_ref,
        json={"meeting_ref": MEETING, "present": ["coord", "caw", "politie"]},
    )
    return case_ref


def upload(gw: RunningGateway, name: str, media_type: str, data: bytes, status: int = 201) -> Any:
    return call(
        gw,
        "POST",
        "/v1/attachments",
        status,
        params={"name": name},
        data=data,
        headers={"Content-Type": media_type},
    )


def send_minutes(gw: RunningGateway, case_ref: str, ids: list[str], status: int = 201) -> Any:
    request = {
        "case_ref": case_ref,
        "purpose": "verslag_besluit",
        "to": ["caw", "politie"],
        "meeting_ref": MEETING,
        "body": body("verslag_besluit", meeting_ref=MEETING),
        "attachments": ids,
    }
    return call(gw, "POST", "/v1/messages", status, json=request)


def download(gw: RunningGateway, message_id: str, n: int) -> Any:
    return gw.request("GET", f"/v1/messages/{message_id}/attachments/{n}")


def folder_bytes(gw: RunningGateway) -> list[bytes]:
    folder = gw.gateway.config.path("documents")
    return [path.read_bytes() for path in folder.iterdir()]


def test_documents_go_from_upload_to_download_and_are_erased_with_the_case(
    cell: GatewayCell,
) -> None:
    gws = RunningGateways(cell, ["coord", "caw", "clb", "politie"])
    try:
        coord, caw = gws["coord"], gws["caw"]
        after = cursor(caw)
        case_ref = met_case(gws)
        uploads = [
            upload(coord, "verslag.pdf", "application/pdf", MINUTES_PDF),
            upload(coord, "foto.png", "image/png", PHOTO_PNG),
        ]
        assert uploads[0]["digest"] == attachment_digest(MINUTES_PDF).hex()
        assert uploads[1]["size"] == len(PHOTO_PNG)
        sent = send_minutes(coord, case_ref, [u["attachment_id"] for u in uploads])
        # An upload belongs to its message once sent: it cannot be sent twice.
        again = send_minutes(coord, case_ref, [uploads[0]["attachment_id"]], 422)
        assert again["code"] == "attachment_unknown"

        message = receive(caw, after, "verslag_besluit", case_ref)
        assert message["message_id"] == sent["message_id"]
        assert [(a["n"], a["name"], a["size"]) for a in message["attachments"]] == [
            (0, "verslag.pdf", len(MINUTES_PDF)),
            (1, "foto.png", len(PHOTO_PNG)),
        ]
        for n, (data, media_type) in enumerate(
            [(MINUTES_PDF, "application/pdf"), (PHOTO_PNG, "image/png")]
        ):
            got = download(caw, message["message_id"], n)
            assert got.status_code == 200
            assert got.content == data
            assert got.headers["Content-Type"] == media_type
            assert got.headers["Content-Length"] == str(len(data))
            assert message["attachments"][n]["name"] in got.headers["Content-Disposition"]
        # At rest the documents are sealed: no plaintext in the receiver's folder.
        stored = folder_bytes(caw)
        assert len(stored) == 2
        assert not any(b"%PDF" in f or b"IHDR" in f for f in stored)
        records = call(caw, "GET", "/v1/dossier", 200, params={"case_ref": case_ref})["records"]
        assert [len(r["attachments"]) for r in records] == [2]

        call(caw, "POST", "/v1/cases/{case_ref}/erase", 200, case_ref=case_ref)
        assert folder_bytes(caw) == []
        assert download(caw, message["message_id"], 0).status_code == 404
    finally:
        gws.close()


def test_received_documents_survive_a_restart_of_the_receiver(cell: GatewayCell) -> None:
    gws = RunningGateways(cell, ["coord", "caw"])
    try:
        after = cursor(gws["caw"])
        case_ref = met_case(gws)
        ids = [upload(gws["coord"], "verslag.pdf", "application/pdf", MINUTES_PDF)]
        send_minutes(gws["coord"], case_ref, [i["attachment_id"] for i in ids])
        message_id = receive(gws["caw"], after, "verslag_besluit", case_ref)["message_id"]
    finally:
        gws.close()
    again = RunningGateways(cell, ["caw"])
    try:
        got = download(again["caw"], message_id, 0)
        assert (got.status_code, got.content) == (200, MINUTES_PDF)
    finally:
        again.close()


@pytest.fixture(scope="module")
def gws(cell: GatewayCell) -> Iterator[RunningGateways]:
    running = RunningGateways(cell, ["coord", "caw", "politie"])
    try:
        yield running
    finally:
        running.close()


def test_content_that_is_not_its_declared_type_is_refused_at_upload(
    gws: RunningGateways,
) -> None:
    problem = upload(gws["coord"], "verslag.pdf", "application/pdf", PHOTO_PNG, 422)
    assert problem["code"] == "attachment_type_mismatch"
    problem = upload(gws["coord"], "setup.exe", "application/x-msdownload", b"MZ", 422)
    assert problem["code"] == "attachment_type_not_allowed"
    assert folder_bytes(gws["coord"]) == [] or all(
        b"%PDF" not in f for f in folder_bytes(gws["coord"])
    )


def test_a_purpose_without_documents_refuses_an_attachment_before_queueing(
    gws: RunningGateways,
) -> None:
    coord = gws["coord"]
    case_ref = new_case(gws, ["caw"])
    move(gws, case_ref, "in_screening")
    attachment = upload(coord, "vraag.pdf", "application/pdf", MINUTES_PDF)
    before = call(coord, "GET", "/v1/outbox", 200, params={"state": "pending,sent,failed"})
    request = {
        "case_ref": case_ref,
        "purpose": "screening_vraag",
        "to": ["caw"],
        "body": body("screening_vraag"),
        "attachments": [attachment["attachment_id"]],
    }
    problem = call(coord, "POST", "/v1/messages", 422, json=request)
    assert problem["code"] == "attachment_not_allowed"
    after = call(coord, "GET", "/v1/outbox", 200, params={"state": "pending,sent,failed"})
    assert after == before


def test_an_upload_over_the_largest_cap_is_refused_before_its_bytes(
    gws: RunningGateways,
) -> None:
    coord = gws["coord"]
    address = urlsplit(coord.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/attachments?name=groot.pdf")
        connection.putheader("Authorization", f"Bearer {coord.token}")
        connection.putheader("Content-Type", "application/pdf")
        connection.putheader("Content-Length", str(MAX_UPLOAD_BYTES + 1))
        connection.endheaders()
        connection.send(b"%PDF-1.4\n")
        answer = connection.getresponse()
        assert answer.status == 413
        assert b"attachment_too_large" in answer.read()
    finally:
        connection.close()


def arrived(gws: RunningGateways, name: str, message_id: bytes, timeout: float = 30) -> Message:
    """The message, once the embedding API hands it over."""
    gateway = gws[name].gateway

    async def collect() -> list[Message]:
        return [m async for m in gateway.messages(follow=False)]

    deadline = time.monotonic() + timeout
    seen: list[Message] = []
    while time.monotonic() < deadline:
        seen += gws.loop.run(collect())
        for message in seen:
            if message.message_id == message_id:
                return message
        gws.loop.run(gateway.poll())
    raise AssertionError(f"{name} never received {message_id.hex()}")


def test_the_embedding_api_sends_paths_and_files_and_hands_out_documents(
    gws: RunningGateways, tmp_path: Path
) -> None:
    case_ref = met_case(gws)
    minutes = tmp_path / "verslag.pdf"
    minutes.write_bytes(MINUTES_PDF)
    photo = tmp_path / "foto.png"
    photo.write_bytes(PHOTO_PNG)
    coord = gws["coord"].gateway
    with photo.open("rb") as photo_file:
        receipt = gws.loop.run(
            coord.send(
                case_ref,
                "verslag_besluit",
                to=["caw", "politie"],
                body=body("verslag_besluit", meeting_ref=MEETING),
                meeting_ref=MEETING,
                attachments=[minutes, photo_file],
            )
        )
    assert not isinstance(receipt, bytes)
    message = arrived(gws, "caw", receipt.message_id)
    documents = message.attachments
    assert [(d.name, d.media_type, d.size) for d in documents] == [
        ("verslag.pdf", "application/pdf", len(MINUTES_PDF)),
        ("foto.png", "image/png", len(PHOTO_PNG)),
    ]
    saved = documents[0].save(tmp_path / "ontvangen.pdf")
    assert saved.read_bytes() == MINUTES_PDF
    with documents[1].open() as handle:
        assert handle.read() == PHOTO_PNG
