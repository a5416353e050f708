"""One LIVC-R case through its whole life, over the network: a hub and six gateways on loopback.

Run with `make demo` (or `python examples/networked_cell.py [--keep]`). Everything lives in a
fresh temporary folder: the hub (`livcr hub serve`) and one gateway per service (`livcr gateway
serve`), each its own process with its own SQLite files. This script plays two parts. As the
services' case-management software it talks only to each service's own gateway, over that
gateway's local HTTP API with its bearer token. As the hub operator it creates the cell, enrols
the services and later revokes one (`hub.operator`, `livcr hub ...`). It prints who sent which
purpose to whom and what each side could read, then what the hub stored (metadata only),
verifies the hub's log and searches every file of the hub for the plaintext it must never have
seen. It exits non-zero as soon as a step does not behave as the protocol says.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPMessage
from pathlib import Path
from typing import Any

import msgspec
from demo_progress import StartupProgress

from gateway.setup import init_gateway
from hub import operator
from hub.config import load_config as load_hub_config
from hub.keyfiles import read_log_key, read_root_key
from livcr_exchange.attachments import attachment_digest
from livcr_exchange.cases import mint_case_ref
from livcr_exchange.document_examples import pdf
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import decode_body
from livcr_exchange.roles import Role

CELL = "voorbeeldstad"
ROOT_PASSPHRASE = "demo root passphrase, never use in production"  # noqa: S105
GATEWAY_PASSPHRASE = "demo gateway passphrase"  # noqa: S105
KBO = {
    "coord": "0207437468",
    "io-politie": "0208000068",
    "caw": "0458000049",
    "clb": "0862000002",
    "ocmw": "0212000032",
    "school": "0419000012",
    "toezichtcommissie": "0216000093",  # the supervisory commission: audits only
}
SERVICES = (
    ("coord", Role.COORDINATOR, "preventiedienst, coordinator of the cell"),
    ("io-politie", Role.IO_POLITIE, "police information officer"),
    ("caw", Role.DEELNEMER, "CAW (welfare)"),
    ("clb", Role.DEELNEMER, "CLB (pupil guidance)"),
    ("ocmw", Role.DEELNEMER, "OCMW (social services)"),
    ("school", Role.AANMELDER_EXTERN, "a secondary school, external referrer"),
)
SUPERVISOR = "toezichtcommissie"
DAY = 86_400
START_TIMEOUT = 30.0
DELIVERY_TIMEOUT = 20.0
HUB_DATABASE = "hub.sqlite3"
MINUTES_NAME = "verslag-overleg.pdf"


class DemoFailed(Exception):
    """A step did not behave as the protocol says."""


def check(condition: object, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def iso_date(at: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


# The services' software talks plain HTTP + JSON to its own gateway: nothing here is Python-only.
class ApiError(Exception):
    """A gateway answered with a problem document: ``code`` is the protocol's error code."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class GatewayApi:
    """A minimal client of a gateway's local HTTP API (bearer token from `api.token`)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self._token = token
        # Loopback only: never route through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: object = None, *, timeout: float = 30.0) -> Any:
        """Raises ApiError for a problem answer, OSError when the gateway is not reachable."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        payload, _headers = self.exchange(method, path, data, "application/json", timeout)
        return json.loads(payload) if payload else None

    def upload(self, name: str, media_type: str, data: bytes) -> Any:
        """A document's raw bytes to `POST /v1/attachments`; its upload, named by a send."""
        query = urllib.parse.urlencode({"name": name})
        payload, _headers = self.exchange("POST", f"/v1/attachments?{query}", data, media_type)
        return json.loads(payload)

    def download(self, path: str) -> tuple[bytes, HTTPMessage]:
        """A document's bytes and the answer's headers (media type, filename)."""
        return self.exchange("GET", path, None, "application/json")

    def exchange(
        self, method: str, path: str, data: bytes | None, content_type: str, timeout: float = 30.0
    ) -> tuple[bytes, HTTPMessage]:
        request = urllib.request.Request(  # noqa: S310  (our own loopback gateway)
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": content_type},
        )
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.read(), response.headers
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            exc.close()
            try:
                problem = json.loads(payload)
                code, detail = str(problem.get("code")), str(problem.get("detail", ""))
            except (ValueError, AttributeError):
                code, detail = "http_error", payload[:200].decode("utf-8", "replace")
            raise ApiError(exc.code, code, detail) from None

    def get(self, path: str, *, timeout: float = 30.0) -> Any:
        return self.call("GET", path, timeout=timeout)

    def post(self, path: str, body: object) -> Any:
        return self.call("POST", path, body)


@dataclass
class Sent:
    message_id: str
    sender: str
    purpose: str
    recipients: list[str]
    leaf_index: int


@dataclass
class Service:
    """One service: its gateway folder and process, and its software's view of its inbox."""

    participant_id: str
    role: Role
    description: str
    folder: Path
    api_port: int
    process: subprocess.Popen[bytes] | None = None
    api: GatewayApi | None = None
    after: int = 0
    inbox: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def http(self) -> GatewayApi:
        assert self.api is not None, "the gateway is not running"
        return self.api

    def collect(self, wait: float) -> None:
        """Long-poll the gateway for what arrived since the last call."""
        page = self.http.get(f"/v1/messages?after={self.after}&limit=100&wait={wait:g}")
        for message in page["messages"]:
            self.inbox[message["message_id"]] = message
        self.after = int(page["next_after"])

    def wait_for(self, message_ids: set[str], timeout: float = DELIVERY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not message_ids <= self.inbox.keys():
            remaining = deadline - time.monotonic()
            check(remaining > 0, f"{self.participant_id} did not receive {message_ids}")
            self.collect(min(remaining, 5.0))

    def dossier_ids(self, case_ref: str) -> set[str]:
        return {r["message_id"] for r in self.dossier(case_ref)}

    def dossier(self, case_ref: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.http.get(f"/v1/dossier?case_ref={case_ref}")["records"]
        return records


class Cell:
    """The hub and the gateways of one cell, as processes in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hub_dir = folder / "hub"
        self.hub_port = free_port()
        self.hub_process: subprocess.Popen[bytes] | None = None
        self.root_key = self.log_key = ""
        self.services = {
            pid: Service(pid, role, text, folder / pid, free_port()) for pid, role, text in SERVICES
        }
        self.env = {
            **os.environ,
            "LIVCR_PASSPHRASE": GATEWAY_PASSPHRASE,
            "LIVCR_ROOT_PASSPHRASE": ROOT_PASSPHRASE,
        }

    @property
    def hub_config(self) -> Path:
        return self.hub_dir / operator.CONFIG_NAME

    def livcr(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an operator command of the `livcr` CLI."""
        return subprocess.run(  # noqa: S603  (our own CLI, fixed arguments)
            [sys.executable, "-m", "livcr_cli", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )

    def create(self) -> None:
        """The operator creates the cell; each service creates its gateway; the operator enrols."""
        operator.init_cell(self.hub_dir, CELL, ROOT_PASSPHRASE.encode(), port=self.hub_port)
        config = load_hub_config(self.hub_config)
        root = read_root_key(self.hub_dir / "root.secret", ROOT_PASSPHRASE.encode())
        log_key = read_log_key(self.hub_dir / "log.key").public.to_text()
        self.root_key, self.log_key = root.public.to_text(), log_key
        now = int(time.time())
        bundles = {}
        for service in self.services.values():
            bundles[service.participant_id] = init_gateway(
                service.folder,
                participant_id=service.participant_id,
                cell_id=CELL,
                root_key=root.public.to_text(),
                hub_url=f"http://127.0.0.1:{self.hub_port}",
                hub_log_key=log_key,
                passphrase=GATEWAY_PASSPHRASE.encode(),
                now=now,
                api_port=service.api_port,
                key_cost=(1, 8192),  # cheap Argon2id: a demo, not a deployment
            )

        async def enrol_all() -> None:
            async with operator.opened(config) as store:
                for service in self.services.values():
                    bundle = json.loads(bundles[service.participant_id].read_text())
                    await operator.enrol(
                        store,
                        config,
                        root,
                        operator.PublicBundle.from_json(bundle),
                        role=service.role,
                        organisation=KBO[service.participant_id],
                        purposes=operator.default_purposes(service.role),
                        now=now - 60,
                        valid_days=30,
                    )

        asyncio.run(enrol_all())

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as handle:
            return subprocess.Popen(  # noqa: S603  (our own CLI, fixed arguments)
                [sys.executable, "-m", "livcr_cli", *args],
                stdout=handle,
                stderr=handle,
                env=self.env,
            )

    def start(self, progress: StartupProgress | None = None) -> None:
        done: Callable[[str], None] = progress.done if progress else lambda _what: None
        self.hub_process = self._spawn(
            ["hub", "serve", "--config", str(self.hub_config)], self.hub_dir / "serve.log"
        )
        wait_listening(self.hub_process, self.hub_port, "the hub")
        done("the hub serves")
        for service in self.services.values():
            self.spawn_gateway(service)
        for service in self.services.values():
            self.wait_connected(service)
            done(f"gateway {service.participant_id} connected")

    def spawn_gateway(self, service: Service) -> None:
        service.process = self._spawn(
            ["gateway", "serve", "--config", str(service.folder / "gateway.toml")],
            service.folder / "serve.log",
        )

    def wait_connected(self, service: Service) -> None:
        """Until the gateway serves its API and holds its push stream from the hub."""
        assert service.process is not None
        wait_listening(service.process, service.api_port, f"gateway {service.participant_id}")
        token = (service.folder / "api.token").read_text().strip()
        service.api = GatewayApi(f"http://127.0.0.1:{service.api_port}", token)
        deadline = time.monotonic() + START_TIMEOUT
        while not service.http.get("/v1/status").get("connected"):
            check(time.monotonic() < deadline, f"{service.participant_id} never connected")
            time.sleep(0.05)

    def stop_gateway(self, service: Service) -> None:
        """Stop one gateway as its operator would (SIGTERM), and wait until it is gone."""
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        service.process.wait(timeout=START_TIMEOUT)
        service.api = None

    def stop(self) -> None:
        processes = [s.process for s in self.services.values()] + [self.hub_process]
        for process in processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, path: Path, lines: int = 8) -> str:
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoFailed(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise DemoFailed(f"{what} did not start listening on port {port}")


# Bodies: the fictitious examples, adapted to this case, with a unique marker in every free-text
# field so that the end of the demo can search the hub's files for plaintext.
class Markers:
    def __init__(self) -> None:
        self.issued: list[str] = []

    def __call__(self, text: str) -> str:
        marker = f"PLAINTEXT-{secrets.token_hex(5)}"
        self.issued.append(marker)
        return f"{text} [{marker}]"


def body(tag: str, **changes: Any) -> dict[str, Any]:
    """The example body of ``tag`` as JSON with ``changes``, checked against the schema."""
    data: dict[str, Any] = msgspec.to_builtins(example_body(tag), order="deterministic")
    data.update(msgspec.to_builtins(changes))
    decode_body(tag, json.dumps(data).encode())  # the software checks before it sends
    return data


# The transcript.
def heading(text: str) -> None:
    print(f"\n{text}")


def line(text: str) -> None:
    print(f"  {text}")


def _person(data: dict[str, Any]) -> str:
    person = data["person"]
    return f"{person['given_name']} {person['family_name'].split()[0]}"


# What a recipient's software shows of a body: enough to prove that it was read.
SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "aanmelding": lambda d: (
        f"referral of {_person(d)} (minor: {d['minor']}), {d['concern_category']}, {d['urgency']}"
    ),
    "screening_vraag": lambda d: f"is {_person(d)} known to you?",
    "screening_antwoord": lambda d: f"answer: {d['answer']}",
    "uitnodiging_overleg": lambda d: (
        f"meeting {d['meeting_ref']} on {d['meeting_date']} {d['start_time']}"
    ),
    "casusinfo_overleg": lambda d: (
        f"{len(d['notes'])} note(s) on {', '.join(n['domain'] for n in d['notes'])},"
        f" to delete by {d['expires_on']}"
    ),
    "verslag_besluit": lambda d: (
        f"{len(d['decisions'])} decision(s), next {d['next_review']},"
        f" {len(d['attachments'])} document(s) attached"
    ),
    "actieplan": lambda d: f"{len(d['goals'])} goal(s), case owner {d['case_owner']}",
    "opvolgingsrapport": lambda d: f"status {d['status']}",
    "terugkoppelingsfiche": lambda d: f"discussed: {d['discussed']}, follow-up {d['follow_up']}",
    "terugkoppeling_aanmelder": lambda d: f"status {d['status']} (a referrer learns no more)",
    "afsluiting": lambda d: f"closed ({d['reason']}), delete by {d['deletion_deadline']}",
    "wissingsbevestiging": lambda d: f"deleted {len(d['message_ids'])} record(s)",
}


def summary(purpose: str, data: dict[str, Any] | None) -> str:
    return "nothing: the content was deleted" if data is None else SUMMARIES[purpose](data)


class Scenario:
    """The case, step by step; every step checks what it claims."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.s = cell.services
        self.marker = Markers()
        self.sent: list[Sent] = []
        # (sender, purpose, code, whether the hub logs it: not when the sender is revoked)
        self.refusals: list[tuple[str, str, str, bool]] = []
        self.case = mint_case_ref(secrets.token_bytes)  # 128 random bits (spec §8.3)
        now = int(time.time())
        self.now = now
        self.meeting = f"overleg-{iso_date(now + 7 * DAY)}"
        self.steps = 0
        self.revoked: set[str] = set()
        self.ocmw_before: set[str] = set()
        self.person: dict[str, Any] = {}
        self.confirmations = 0  # sent by the holders' gateways themselves, not by this script
        self.opened: list[bytes] = []  # the documents the recipients' software opened

    def step(self, title: str) -> None:
        self.steps += 1
        heading(f"{self.steps}. {title}")

    # Sending and reading.
    def send(
        self,
        sender: str,
        purpose: str,
        to: list[str],
        data: dict[str, Any],
        *,
        meeting_ref: str | None = None,
        cosignatures: list[dict[str, str]] | None = None,
        attachments: list[str] | None = None,
        quiet: bool = False,
    ) -> Sent:
        request: dict[str, Any] = {
            "case_ref": self.case,
            "purpose": purpose,
            "to": to,
            "body": data,
        }
        if meeting_ref is not None:
            request["meeting_ref"] = meeting_ref
        if cosignatures is not None:
            request["cosignatures"] = cosignatures
        if attachments is not None:
            request["attachments"] = attachments
        receipt = self.s[sender].http.post("/v1/messages", request)
        sent = Sent(receipt["message_id"], sender, purpose, sorted(to), receipt["leaf_index"])
        self.sent.append(sent)
        if not quiet:
            self.show(sent)
        return sent

    def show(self, sent: Sent) -> None:
        """Who sent what to whom; what each recipient read; that nobody else holds a copy."""
        self.announce(sent)
        self.deliveries(sent)

    def announce(self, sent: Sent) -> None:
        line(
            f"{sent.sender:<10} -> {', '.join(sent.recipients):<30} {sent.purpose:<22}"
            f" log leaf {sent.leaf_index}"
        )

    def deliveries(self, sent: Sent) -> None:
        documents = 0
        for recipient in sent.recipients:
            self.s[recipient].wait_for({sent.message_id})
            message = self.s[recipient].inbox[sent.message_id]
            check(message["sender_id"] == sent.sender, "the sender is the one that signed")
            check(message["purpose"] == sent.purpose, "the purpose is the one that was sealed")
            line(f"    {recipient:<10} reads: {summary(sent.purpose, message['body'])}")
            for document in message["attachments"]:
                self.open_document(recipient, sent.message_id, document)
            documents = len(message["attachments"])
        others = [pid for pid in self.s if pid not in {sent.sender, *sent.recipients}]
        for pid in others:
            check(
                sent.message_id not in self.s[pid].dossier_ids(self.case),
                f"{pid} must hold no copy of a message not addressed to it",
            )
        if others:
            line(f"    {'others':<10} hold nothing of it: {', '.join(others)}")
        for pid in others if documents else ():
            self.no_document(pid, sent.message_id)

    def open_document(self, pid: str, message_id: str, document: dict[str, Any]) -> None:
        """The recipient's software downloads a document, checks it against the digest that
        the sender sealed and signed in the body, and saves it in its own folder."""
        data, headers = self.s[pid].http.download(
            f"/v1/messages/{message_id}/attachments/{document['n']}"
        )
        matched = attachment_digest(data).hex() == document["digest"]
        check(matched, f"{pid}'s copy of {document['name']} matches its sealed digest")
        check(len(data) == document["size"], f"{pid} got {document['name']} whole")
        check(headers["Content-Type"] == document["media_type"], "the type checked on receipt")
        saved = self.cell.folder / "received" / pid / Path(document["name"]).name
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(data)
        self.opened.append(data)
        line(
            f"    {pid:<10} opens {document['name']}: {len(data)} bytes,"
            f" {headers['Content-Type']}, digest matched the signed body"
        )
        line(f"    {'':<10} saved as {saved.relative_to(self.cell.folder)}")

    def no_document(self, pid: str, message_id: str) -> None:
        """A participant the message was not addressed to has no document of it to serve."""
        try:
            self.s[pid].http.download(f"/v1/messages/{message_id}/attachments/0")
        except ApiError as exc:
            check(exc.status == 404, f"{pid} has no document of {message_id}: {exc}")
            line(f"    {pid:<10} asks its gateway for the document: {exc.status} {exc.code}")
        else:
            raise DemoFailed(f"{pid} must not be able to open a document not addressed to it")

    def refused(
        self,
        sender: str,
        purpose: str,
        to: list[str],
        data: dict[str, Any],
        code: str,
        *,
        why: str = "",
        **kw: Any,
    ) -> None:
        """Send what the rules forbid: the hub (or the gateway) must refuse it with ``code``."""
        before = {pid: s.dossier_ids(self.case) for pid, s in self.s.items()}
        try:
            self.send(sender, purpose, to, data, quiet=True, **kw)
        except ApiError as exc:
            check(exc.code == code, f"expected {code}, the gateway answered {exc.code}")
            line(f"{sender:<10} -> {', '.join(sorted(to)):<30} {purpose:<22} REFUSED {exc.code}")
            line(f"    why: {why} (the answer: {exc.detail})" if why else f"    why: {exc.detail}")
            self.refusals.append((sender, purpose, exc.code, sender not in self.revoked))
        else:
            raise DemoFailed(f"{purpose} from {sender} to {to} should have been refused ({code})")
        after = {pid: s.dossier_ids(self.case) for pid, s in self.s.items()}
        check(before == after, "a refused message leaves no trace in any dossier")

    # The case's life.
    def run(self) -> None:
        self.referral()
        self.screening()
        self.invitation_and_inputs()
        self.meeting_minutes_and_plan()
        self.progress_report()
        self.feedback_form()
        self.revocation()
        self.closure()

    def referral(self) -> None:
        self.step("Referral: the school refers a pupil to the cell (aanmelding)")
        self.person = body("aanmelding")["person"] | {"family_name": self.marker("Voorbeeld")}
        self.send(
            "school",
            "aanmelding",
            ["coord"],
            body(
                "aanmelding",
                person=self.person,
                description=self.marker("Deelt extreemrechtse propaganda in de klasgroep."),
            ),
        )
        self.send(
            "coord",
            "terugkoppeling_aanmelder",
            ["school"],
            body("terugkoppeling_aanmelder", status="ontvangen"),
        )

    def screening(self) -> None:
        coord = self.s["coord"].http
        self.step("Screening: who knows this person? (screening_vraag / screening_antwoord)")
        coord.post(f"/v1/cases/{self.case}/members", {"add": ["io-politie", "caw", "clb", "ocmw"]})
        coord.post(f"/v1/cases/{self.case}/transition", {"to": "in_screening"})
        line("coord adds io-politie, caw, clb and ocmw to the case; state in_screening")
        question = body(
            "screening_vraag",
            person=self.person,
            answer_by=iso_date(self.now + 5 * DAY),
        )
        self.send("coord", "screening_vraag", ["io-politie", "caw", "clb", "ocmw"], question)
        for pid, answer in (
            ("io-politie", "known"),
            ("caw", "known"),
            ("clb", "not_known"),
            ("ocmw", "no_answer"),
        ):
            self.send(
                pid, "screening_antwoord", ["coord"], body("screening_antwoord", answer=answer)
            )
        line("    (ocmw answers 'no answer': always allowed, nobody is obliged to speak)")

    def invitation_and_inputs(self) -> None:
        coord = self.s["coord"].http
        self.step("Meeting invitation and the invitees' input (uitnodiging_overleg, casusinfo)")
        coord.post(f"/v1/cases/{self.case}/transition", {"to": "geagendeerd"})
        invitees = ["io-politie", "caw", "clb", "ocmw"]
        self.send(
            "coord",
            "uitnodiging_overleg",
            invitees,
            body(
                "uitnodiging_overleg",
                meeting_ref=self.meeting,
                meeting_date=iso_date(self.now + 7 * DAY),
                case_refs=(self.case,),
            ),
            meeting_ref=self.meeting,
        )
        for sender, domain, text in (
            ("io-politie", "justitie", "Geen lopende dossiers; wel gekend van een melding."),
            ("caw", "welzijn", "Gezin is gekend, begeleiding stopte vorig jaar."),
            ("clb", "onderwijs", "Schoolresultaten dalen; vaak ongewettigd afwezig."),
        ):
            notes = [{"domain": domain, "text": self.marker(text)}]
            self.send(
                sender,
                "casusinfo_overleg",
                sorted({"coord", *invitees} - {sender}),
                body(
                    "casusinfo_overleg",
                    meeting_ref=self.meeting,
                    notes=notes,
                    expires_on=iso_date(self.now + 37 * DAY),
                ),
                meeting_ref=self.meeting,
            )

    def meeting_minutes_and_plan(self) -> None:
        coord = self.s["coord"].http
        self.step("The meeting; minutes with their PDF to those present; action plan to the owner")
        present = ["coord", "io-politie", "caw", "clb"]
        coord.post(
            f"/v1/cases/{self.case}/meetings", {"meeting_ref": self.meeting, "present": present}
        )
        coord.post(f"/v1/cases/{self.case}/transition", {"to": "besproken"})
        line(
            f"coord records who was present at {self.meeting}: {', '.join(present)} (ocmw excused)"
        )
        minutes = body(
            "verslag_besluit",
            meeting_ref=self.meeting,
            decisions=(
                self.marker("Socio-preventief traject met CAW als casusverantwoordelijke."),
            ),
            actions=(),
            next_review=iso_date(self.now + 60 * DAY),
        )
        self.refused(
            "coord",
            "verslag_besluit",
            ["io-politie", "caw", "clb", "ocmw"],
            minutes,
            "recipient_not_allowed",
            meeting_ref=self.meeting,
        )
        self.minutes_with_document(minutes)
        coord.post(f"/v1/cases/{self.case}/members", {"owner": "caw"})
        line("coord appoints caw as case owner (casusverantwoordelijke)")
        plan = body(
            "actieplan",
            case_owner="caw",
            goals=(self.marker("Herstel van het schoolengagement."),),
            actions=(
                {
                    "owner": "caw",
                    "what": self.marker("Wekelijks begeleidingsgesprek."),
                    "due": iso_date(self.now + 30 * DAY),
                },
            ),
            next_review=iso_date(self.now + 60 * DAY),
        )
        self.send("coord", "actieplan", ["caw"], plan)
        coord.post(f"/v1/cases/{self.case}/transition", {"to": "traject_lopend"})
        line("state traject_lopend")

    def minutes_with_document(self, minutes: dict[str, Any]) -> None:
        """The minutes carry their PDF. clb's gateway is offline as they go, so the hub holds
        the sealed envelope for it until it returns: what the hub keeps can be looked at
        without a race against the deliveries."""
        clb = self.s["clb"]
        self.cell.stop_gateway(clb)
        line("clb's gateway is offline for now (its operator stopped it)")
        text = self.marker("Verslag van het casusoverleg: traject met het CAW afgesproken.")
        document = pdf(text)
        upload = self.s["coord"].http.upload(MINUTES_NAME, "application/pdf", document)
        check(upload["digest"] == attachment_digest(document).hex(), "the upload is the PDF")
        line(
            f"coord uploads {upload['name']} to its gateway: {upload['size']} bytes,"
            f" {upload['media_type']}, checked by content"
        )
        sent = self.send(
            "coord",
            "verslag_besluit",
            ["io-politie", "caw", "clb"],
            minutes,
            meeting_ref=self.meeting,
            attachments=[upload["attachment_id"]],
            quiet=True,
        )
        self.announce(sent)
        self.hub_holds_ciphertext(sent.message_id, document, text.encode("latin-1"))
        self.cell.spawn_gateway(clb)
        self.cell.wait_connected(clb)
        line("clb's gateway is back and fetches what waited for it")
        self.deliveries(sent)

    def hub_holds_ciphertext(self, message_id: str, document: bytes, text: bytes) -> None:
        """The envelope the hub holds for clb, and every file of the hub, carry neither the PDF's
        bytes nor its text."""
        hub = self.cell.hub_dir
        database = hub / HUB_DATABASE
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            row = connection.execute(
                "SELECT blob, size FROM envelopes WHERE message_id = ?",
                (bytes.fromhex(message_id),),
            ).fetchone()
        connection.close()
        check(row is not None, "the hub holds the sealed minutes for the offline clb")
        blob, size = row
        # A small envelope stays in its row; a larger one is streamed to a file beside the store.
        envelope = blob or (hub / f"{HUB_DATABASE}.envelopes" / message_id).read_bytes()
        where = (
            f"in its row of {HUB_DATABASE}"
            if blob
            else f"in {HUB_DATABASE}.envelopes/{message_id[:12]}..."
        )
        check(len(envelope) == size, "the hub holds the whole envelope")
        files = [p for p in sorted(hub.rglob("*")) if p.is_file()]  # database, envelopes, logs
        for name, data in [("envelope", envelope), *((p.name, p.read_bytes()) for p in files)]:
            check(document not in data, f"the PDF's bytes are in the hub's {name}")
            check(text not in data, f"the PDF's text is in the hub's {name}")
        line(f"    the hub holds it for clb, {size} bytes sealed {where}")
        line(
            f"    the PDF's bytes and its text: in neither that envelope nor any of the hub's"
            f" {len(files)} files (its database, envelope files and logs)"
        )

    def progress_report(self) -> None:
        self.step("Progress report from the case owner (opvolgingsrapport)")
        self.send(
            "caw",
            "opvolgingsrapport",
            ["coord"],
            body(
                "opvolgingsrapport",
                status="positief",
                note=self.marker("Jongere komt op afspraak en gaat opnieuw naar school."),
            ),
        )

    def feedback_form(self) -> None:
        self.step("Feedback form to the police (terugkoppelingsfiche): consensus of all present")
        fiche = body(
            "terugkoppelingsfiche",
            case_ref=self.case,
            meeting_ref=self.meeting,
            next_review=iso_date(self.now + 60 * DAY),
            nonce=secrets.token_hex(32),
        )
        # Co-signers agree to the recipients and to a deadline for the hub to log it (spec §7.4).
        request = {
            "case_ref": self.case,
            "meeting_ref": self.meeting,
            "body": fiche,
            "to": ["io-politie"],
            "deadline": int(time.time()) + DAY,
        }
        signatures = {}
        for pid in ("coord", "io-politie", "caw"):
            signatures[pid] = self.s[pid].http.post("/v1/cosignatures", request)
            line(f"{pid:<10} co-signs the exact content of the fiche")
        line(f"{'clb':<10} declines to co-sign (no consensus yet)")
        self.refused(
            "coord",
            "terugkoppelingsfiche",
            ["io-politie"],
            fiche,
            "cosignature_invalid",
            why="the co-signature of clb, present at the meeting, is missing",
            meeting_ref=self.meeting,
            cosignatures=list(signatures.values()),
        )
        signatures["clb"] = self.s["clb"].http.post("/v1/cosignatures", request)
        line(f"{'clb':<10} co-signs after all")
        self.send(
            "coord",
            "terugkoppelingsfiche",
            ["io-politie"],
            fiche,
            meeting_ref=self.meeting,
            cosignatures=list(signatures.values()),
        )

    def revocation(self) -> None:
        self.step("The OCMW leaves the cell: the operator revokes it mid-case")
        ocmw = self.s["ocmw"]
        before = ocmw.dossier_ids(self.case)
        result = self.cell.livcr(
            "hub", "revoke", "--config", str(self.cell.hub_config), "ocmw", "--reason", "left"
        )
        check(result.returncode == 0, f"livcr hub revoke failed: {result.stderr}")
        line(f"operator: livcr hub revoke ... ocmw: {result.stdout.strip()}")
        line("from now on the hub refuses messages to ocmw and every request signed by it")
        # The hub closes a revoked participant's push stream once it has read the revocation;
        # from then on it also refuses messages to ocmw.
        deadline = time.monotonic() + START_TIMEOUT
        while ocmw.http.get("/v1/status")["connected"]:
            check(time.monotonic() < deadline, "the hub never acted on the revocation")
            time.sleep(0.05)
        self.revoked.add("ocmw")
        self.ocmw_before = before

    def closure(self) -> None:
        coord = self.s["coord"].http
        self.step("Closure with deletion requests (afsluiting) and confirmations")
        coord.post(
            f"/v1/cases/{self.case}/transition", {"to": "afgesloten", "reason": "traject_afgerond"}
        )
        line("state afgesloten (traject_afgerond)")
        closing = body(
            "afsluiting", reason="traject_afgerond", deletion_deadline=iso_date(self.now + 30 * DAY)
        )
        self.refused(
            "coord",
            "afsluiting",
            ["io-politie", "caw", "clb", "ocmw"],
            closing,
            "recipient_not_allowed",
        )
        holders = ["io-politie", "caw", "clb"]
        self.send("coord", "afsluiting", holders, closing)
        coordinator = self.s["coord"]
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        confirmations: dict[str, dict[str, Any]] = {}
        while len(confirmations) < len(holders):
            check(
                time.monotonic() < deadline, f"deletion confirmations: only {sorted(confirmations)}"
            )
            coordinator.collect(2.0)
            confirmations = {
                m["sender_id"]: m
                for m in coordinator.inbox.values()
                if m["purpose"] == "wissingsbevestiging" and m["case_ref"] == self.case
            }
        self.confirmations = len(confirmations)
        for pid in holders:
            message = confirmations[pid]
            line(f"{pid:<10} -> coord{'':<25} wissingsbevestiging    (sent by its gateway itself)")
            line(f"    {'coord':<10} reads: {summary('wissingsbevestiging', message['body'])}")
            records = self.s[pid].dossier(self.case)
            readable = {r["purpose"] for r in records if r.get("body") is not None}
            erased = {r["message_id"] for r in records if r.get("body") is None}
            check(
                readable == {"afsluiting", "wissingsbevestiging"},
                f"{pid} keeps only the deletion request and its attestation readable: {readable}",
            )
            check(
                set(message["body"]["message_ids"]) == erased,
                f"{pid}'s attestation lists exactly what it deleted",
            )
            line(
                f"    {pid:<10} keeps {len(records)} record(s) of the case as evidence;"
                " readable: only the request and its attestation"
            )
        self.send(
            "coord",
            "terugkoppeling_aanmelder",
            ["school"],
            body("terugkoppeling_aanmelder", status="afgesloten"),
        )
        ocmw = self.s["ocmw"]
        after = ocmw.dossier_ids(self.case)
        check(after == self.ocmw_before, "the revoked ocmw received nothing after its revocation")
        line(f"ocmw (revoked) holds {len(after)} record(s) of the case, all from before")
        confirmation = body(
            "wissingsbevestiging",
            deleted_at=int(time.time()),
            scope="Alle gegevens over deze casus",
            message_ids=sorted(after),
        )
        self.refused("ocmw", "wissingsbevestiging", ["coord"], confirmation, "key_revoked")

    # What the hub saw.
    def hub_view(self) -> None:
        heading("What the hub stored (metadata only)")
        result = self.cell.livcr("hub", "audit", "export", "--config", str(self.cell.hub_config))
        check(result.returncode == 0, f"audit export failed: {result.stderr}")
        records = [json.loads(r) for r in result.stdout.splitlines()]
        kinds = Counter(r["type"] for r in records)
        line("log leaves: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
        for record in records:
            if record.get("case_ref", self.case) != self.case:
                continue
            match record["type"]:
                case "EnvelopeAccepted":
                    line(
                        f"#{record['index']:<3} {record['sender_id']:<10} ->"
                        f" {','.join(record['recipients']):<28} {record['purpose']:<24}"
                        f" {record['size']:>6} bytes sealed"
                    )
                case "CaseTransition":
                    line(
                        f"#{record['index']:<3} case {record['from_state']} -> {record['to_state']}"
                        + (f" ({record['reason']})" if record["reason"] != "none" else "")
                    )
                case "CaseMembership":
                    changes = [f"+{p}" for p in record["added"]]
                    changes += [f"-{p}" for p in record["removed"]]
                    what = " ".join(changes) or "unchanged (the owner appointment)"
                    line(f"#{record['index']:<3} members {what}")
                case "MeetingRecorded":
                    line(
                        f"#{record['index']:<3} meeting {record['meeting_ref']} present:"
                        f" {','.join(record['present'])}"
                    )
                case "Refusal":
                    line(
                        f"#{record['index']:<3} refused: {record['action']} by"
                        f" {record['actor_id']}, {record['code']}"
                    )
        refusals = [r for r in records if r["type"] == "Refusal"]
        receipts = Counter(r["recipient_id"] for r in records if r["type"] == "DeliveryReceipt")
        line(
            "signed delivery receipts: "
            + ", ".join(f"{p} {n}" for p, n in sorted(receipts.items()))
        )
        audited = sorted(code for _, _, code, logged in self.refusals if logged)
        check(
            sorted(r["code"] for r in refusals) == audited,
            "every refusal of an authenticated submission is in the log",
        )
        database = self.cell.hub_dir / HUB_DATABASE
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            columns = [c[1] for c in connection.execute("PRAGMA table_info(envelopes)")]
            pending = connection.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0]
        connection.close()
        line(f"envelope table columns: {', '.join(columns)}")
        line(f"envelopes still held for delivery: {pending} (acknowledged ones are dropped)")

    def verify_log(self) -> None:
        heading("Verifying the hub's log")
        result = self.cell.livcr("hub", "log", "verify", "--config", str(self.cell.hub_config))
        check(result.returncode == 0, f"log verification failed: {result.stdout}{result.stderr}")
        line(result.stdout.strip())
        export = self.s["coord"].http.get(f"/v1/cases/{self.case}/export")
        proven = [r for r in export["records"] if r.get("inclusion_proof") is not None]
        check(proven, "the coordinator's export carries inclusion proofs")
        size = export["checkpoint"].splitlines()[1]
        line(
            f"coord's export of the case: {len(export['records'])} records; the {len(proven)}"
            f" it sent carry an inclusion proof under the signed checkpoint of size {size}"
        )

    def search_plaintext(self) -> None:
        heading("Searching every file for the plaintext")
        markers = [m.encode() for m in self.marker.issued]
        hub_files = sorted(p for p in self.cell.hub_dir.rglob("*") if p.is_file())
        for path in hub_files:
            data = path.read_bytes()
            leaked = [m.decode() for m in markers if m in data]
            check(not leaked, f"plaintext {leaked} found in the hub's {path.name}")
        line(
            f"{len(markers)} markers, one per free-text field sent; none in the hub's"
            f" {len(hub_files)} files ({', '.join(p.name for p in hub_files)})"
        )
        found: set[str] = set()
        for inbox in (s.inbox for s in self.s.values()):
            for message in inbox.values():
                text = json.dumps(message["body"], ensure_ascii=False)
                found.update(m for m in self.marker.issued if m in text)
        for document in self.opened:
            found.update(m for m in self.marker.issued if m.encode() in document)
        check(len(found) == len(markers), "every marker was read by a recipient")
        line("every marker was read by a recipient; the hub never held one")
        gateway_files = [
            p for s in self.s.values() for p in sorted(s.folder.rglob("*")) if p.is_file()
        ]
        for path in gateway_files:
            data = path.read_bytes()
            leaked = [m.decode() for m in markers if m in data]
            check(not leaked, f"plaintext {leaked} in {path}: dossiers are encrypted at rest")
        documents = sum(p.parent.name == "documents" for p in gateway_files)
        line(
            f"none in the gateways' {len(gateway_files)} files either: dossiers, logs and the"
            f" {documents} document files are sealed"
        )

    # The supervisor's view: counts only, from the log it verified itself.
    def oversight(self, audit_dir: Path) -> None:
        heading("The supervisor's oversight report (livcr audit)")
        audit_dir.mkdir(parents=True, exist_ok=True)
        secret = audit_dir / f"{SUPERVISOR}.secret"
        public = audit_dir / f"{SUPERVISOR}.public.json"
        config, run = str(self.cell.hub_config), self.cell.livcr
        for args in (
            ("keys", "new", SUPERVISOR, "--out", str(audit_dir), "--prekeys", "1"),
            (
                "hub",
                "enrol",
                "--config",
                config,
                "--bundle",
                str(public),
                "--role",
                "toezicht",
                "--organisation",
                KBO[SUPERVISOR],
                "--valid-days",
                "30",
            ),
            (
                "audit",
                "fetch",
                "--hub",
                f"http://127.0.0.1:{self.cell.hub_port}",
                "--key",
                str(secret),
                "--cell",
                CELL,
                "--root-key",
                self.cell.root_key,
                "--log-key",
                self.cell.log_key,
                "--out",
                str(audit_dir / "evidence.json"),
            ),
            (
                "audit",
                "report",
                str(audit_dir / "evidence.json"),
                "--key",
                str(secret),
                "--out-dir",
                str(audit_dir / "report"),
            ),
        ):
            result = run(*args)
            check(result.returncode == 0, f"livcr {args[0]} {args[1]}: {result.stderr}")
            line(f"livcr {' '.join(args[:2])}: {result.stdout.strip().splitlines()[-1]}")
        report = json.loads((audit_dir / "report" / "report.json").read_text())
        key = json.loads(public.read_text())["identity_key"]
        verified = run("audit", "verify", str(audit_dir / "report" / "report.json"), "--key", key)
        check(verified.returncode == 0, f"the signed report does not verify: {verified.stderr}")
        line(verified.stdout.strip())
        tables = {t["id"]: t for t in report["tables"]}
        sent = len(self.sent) + self.confirmations
        check(tables["messages_by_purpose_and_month"]["total"] == sent, "every message counted")
        line(f"messages: {sent} in total; per purpose and month, under 5 shown as '<5'")
        purposes = Counter(s.purpose for s in self.sent)
        purposes["wissingsbevestiging"] += self.confirmations
        logged = Counter(code for _, _, code, is_logged in self.refusals if is_logged)
        done = {"case_ref": self.case, "markers": self.marker.issued, "purposes": purposes}
        done |= {"participants": [*self.s, SUPERVISOR], "refusals": logged}
        (audit_dir / "scenario.json").write_text(json.dumps(done))  # what a test compares
        line(f"report: {audit_dir / 'report' / 'report.html'} (and report.json, signed)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--audit-dir",
        type=Path,
        default=None,
        help="the supervisor's folder: its key, evidence and report (default: in the temporary"
        " folder)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="livcr-demo-"))
    cell = Cell(folder)
    ok = False
    try:
        print(f"LIVC-R {CELL}: a hub and six gateways on loopback, files in {folder}")
        # The cell's files and enrolment, the hub, then each gateway until it is connected.
        with StartupProgress(2 + len(cell.services), "starting the cell") as progress:
            cell.create()
            progress.done("keys made, services enrolled")
            cell.start(progress)
        assert cell.hub_process is not None
        line(f"hub        pid {cell.hub_process.pid:<7} http://127.0.0.1:{cell.hub_port}")
        for service in cell.services.values():
            assert service.process is not None
            line(
                f"{service.participant_id:<10} pid {service.process.pid:<7}"
                f" http://127.0.0.1:{service.api_port}  {service.role.value}: {service.description}"
            )
        scenario = Scenario(cell)
        line(f"the case is known everywhere only as {scenario.case}")
        scenario.run()
        scenario.hub_view()
        scenario.verify_log()
        scenario.search_plaintext()
        scenario.oversight(args.audit_dir or folder / SUPERVISOR)
        ok = True
    except Exception as exc:  # noqa: BLE001  (any failure is reported; the exit status says it)
        print(f"\nFAILED: {type(exc).__name__}: {exc}")
        if not isinstance(exc, DemoFailed | ApiError):
            traceback.print_exc()
        for path in [cell.hub_dir, *(s.folder for s in cell.services.values())]:
            tail = cell.log_tail(path / "serve.log")
            if tail:
                print(f"--- {path.name}/serve.log\n{tail}")
    finally:
        cell.stop()
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif not ok or args.keep:
            print(f"(files kept in {folder})")
    if not ok:
        return 1
    print(
        f"\nAll {scenario.steps} steps behaved as specified"
        f" ({len(scenario.sent)} messages, {time.monotonic() - started:.1f} s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
