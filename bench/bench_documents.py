"""Documents gateway to gateway through the hub: end-to-end time and each process's memory.

Usage: python bench/bench_documents.py [--sizes 1,64,256] [--stores sqlite,postgresql]

For each store and each size (MiB of documents in one envelope), starts a fresh cell as
separate processes: `livcr hub serve` (a SQLite file beside its config, or a fresh PostgreSQL
database on the test server, see tests/pgdb.py) and `livcr gateway serve` for the coordinator
(the sender) and for a deelnemer (the receiver). A warm-up sends small minutes with a small PDF
through the same path; then each process's idle resident memory (``VmRSS``) is read and its
peak reset (``clear_refs``), so that the peak read after the transfer (``VmHWM``) is this
size's own. The timed transfer: the bench uploads the documents from files (streamed bodies,
`POST /v1/attachments`), sends minutes naming them (`POST /v1/messages`), long-polls the
receiver until the message is in its dossier and downloads each document to a file
(`GET /v1/messages/{id}/attachments/{n}`, streamed), checking its SHA-256 against the file
sent. The documents are valid PDFs written to disk piece by piece: the bench holds none whole.

Up to 64 MiB the envelope carries one document; above, two (the per-file cap is 128 MiB and
the total cap 254 MiB, so "256" is two documents of about 127 MiB). The target, issue 12:
every process stays within 64 MiB above its idle RSS at every size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from cellproc import Cell, GatewayProcess
from pgdb import fresh_database

from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import MAX_ATTACHMENTS_TOTAL, encode_body, get_purpose
from livcr_exchange.roles import Role

MIB = 1024 * 1024
BOUND = 64 * MIB  # the most a process may grow above its idle RSS (issue 12)
SLACK = 64 * 1024  # room for the body JSON and the framing below a round size
PIECE = MIB  # what the bench reads or writes at a time
MEETING = "meeting-2030-01"
SENDER, RECEIVER = "coord", "caw"
ROLES = {SENDER: Role.COORDINATOR, RECEIVER: Role.DEELNEMER}
TIMEOUT = 1800.0  # seconds for one request of a big transfer on a slow machine
PROCESSES = ("sender", "hub", "receiver")


def document_sizes(size_mib: int) -> list[int]:
    """Byte sizes of the documents of a ``size_mib`` envelope, within the minutes' caps."""
    rule = get_purpose("verslag_besluit").attachments
    assert rule is not None
    total = min(size_mib * MIB, MAX_ATTACHMENTS_TOTAL)
    if total <= rule.max_file_bytes:
        return [total - SLACK]
    half = total // 2
    return [half, half - SLACK]


class HashedFile:
    """A file written piece by piece, with its SHA-256 and length kept as it grows."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.written = 0

    def put(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)
        self.written += len(data)


def write_pdf(path: Path, size: int, label: str) -> str:
    """A valid one-page PDF of about ``size`` bytes whose page content is one long text,
    written piece by piece; returns its SHA-256 (hex)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
    ]
    before, after = b"BT /F1 12 Tf 72 720 Td (", b") Tj ET"
    with path.open("wb") as out:
        pdf = HashedFile(out)
        pdf.put(b"%PDF-1.4\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(pdf.written)
            pdf.put(b"%d 0 obj\n" % number + body + b"\nendobj\n")
        offsets.append(pdf.written)
        text = max(0, size - pdf.written - 400)
        length = len(before) + text + len(after)
        pdf.put(b"4 0 obj\n<< /Length %d >>\nstream\n" % length + before)
        words = (label.encode() + b" ") * (PIECE // (len(label) + 1) + 1)
        for start in range(0, text, PIECE):
            pdf.put(words[: min(PIECE, text - start)])
        pdf.put(after + b"\nendstream\nendobj\n")
        xref = pdf.written
        pdf.put(b"xref\n0 5\n0000000000 65535 f \n")
        pdf.put(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
        pdf.put(b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return pdf.digest.hexdigest()


def vm(pid: int, field_name: str) -> int:
    """``VmRSS`` or ``VmHWM`` of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field_name)


def reset_peak(pid: int) -> bool:
    """Set a process's ``VmHWM`` to its current RSS (Linux ``clear_refs`` 5); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Client:
    """The bench as a service's software: one gateway's local API, bodies streamed from and to
    files."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        api = gateway.api
        self.url = api.base_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {api.token}"

    def call(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = self.session.request(method, self.url + path, timeout=TIMEOUT, **kwargs)
        if response.status_code != status:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def upload(self, path: Path) -> str:
        with path.open("rb") as source:
            answer = self.call(
                "POST",
                "/v1/attachments",
                201,
                params={"name": path.name},
                data=source,
                headers={"Content-Type": "application/pdf"},
            )
        return str(answer["attachment_id"])

    def download(self, message_id: str, n: int, target: Path) -> str:
        """Stream a document to ``target``; returns its SHA-256 (hex)."""
        digest = hashlib.sha256()
        path = f"/v1/messages/{message_id}/attachments/{n}"
        with (
            self.session.get(self.url + path, stream=True, timeout=TIMEOUT) as response,
            target.open("wb") as out,
        ):
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:500]}")
            for piece in response.iter_content(PIECE):
                out.write(piece)
                digest.update(piece)
        return digest.hexdigest()

    def close(self) -> None:
        self.session.close()


def minutes_body() -> Any:
    body = msgspec.structs.replace(example_body("verslag_besluit"), meeting_ref=MEETING)
    return json.loads(encode_body(body))


def met_case(coord: Client) -> str:
    """A case of the receiver's whose meeting was held with it present: minutes may go to it."""
    case_ref = str(coord.call("POST", "/v1/cases", 201, json={"members": [RECEIVER]})["case_ref"])
    for state in ("in_screening", "geagendeerd", "besproken"):
        coord.call("POST", f"/v1/cases/{case_ref}/transition", 200, json={"to": state})
    meeting = {"meeting_ref": MEETING, "present": [SENDER, RECEIVER]}
    coord.call("POST", f"/v1/cases/{case_ref}/meetings", 201, json=meeting)
    return case_ref


def send_documents(cell: Cell, case_ref: str, files: dict[Path, str], folder: Path) -> None:
    """Upload, send, wait for arrival, download and check: the end-to-end path."""
    sender, receiver = Client(cell[SENDER]), Client(cell[RECEIVER])
    try:
        ids = [sender.upload(path) for path in files]
        request = {
            "case_ref": case_ref,
            "purpose": "verslag_besluit",
            "to": [RECEIVER],
            "meeting_ref": MEETING,
            "body": minutes_body(),
            "attachments": ids,
        }
        message_id = str(sender.call("POST", "/v1/messages", 201, json=request)["message_id"])
        cell[RECEIVER].wait_for([message_id], timeout=TIMEOUT)
        for n, (path, sha256) in enumerate(files.items()):
            target = folder / f"received-{n}.pdf"
            got = receiver.download(message_id, n, target)
            if got != sha256:
                raise AssertionError(f"document {n} of {message_id} differs from {path.name}")
            target.unlink()
    finally:
        sender.close()
        receiver.close()


@dataclass
class Row:
    store: str
    size_mib: int
    documents: int
    seconds: float
    idle: dict[str, int]
    peak: dict[str, int]

    def above(self, name: str) -> int:
        return self.peak[name] - self.idle[name]

    def within(self) -> bool:
        return all(self.above(name) <= BOUND for name in PROCESSES)

    def line(self) -> str:
        cells = "".join(
            f" {self.idle[n] / MIB:>7.1f} {self.peak[n] / MIB:>7.1f} {self.above(n) / MIB:>7.1f}"
            for n in PROCESSES
        )
        verdict = "yes" if self.within() else "NO"
        return (
            f"{self.store:<10} {self.size_mib:>4} {self.documents / MIB:>7.2f} {self.seconds:>7.1f}"
            f"{cells} {verdict:>7}"
        )


def header() -> str:
    """Two lines: the processes over their columns, then the columns (MiB but e2e seconds)."""
    names = "".join(f" {name + ' gateway' if name != 'hub' else name:^23}" for name in PROCESSES)
    columns = "".join(f" {'idle':>7} {'peak':>7} {'+idle':>7}" for _ in PROCESSES)
    first = f"{'':<10} {'':>4} {'':>7} {'':>7}{names}"
    return f"{first}\n{'store':<10} {'MiB':>4} {'docs':>7} {'e2e s':>7}{columns} {'<=64':>7}"


@contextmanager
def database(store: str) -> Iterator[str | None]:
    if store == "sqlite":
        yield None
        return
    with fresh_database() as dsn:
        yield dsn


@contextmanager
def running_cell(store: str, folder: Path) -> Iterator[Cell]:
    with database(store) as dsn:
        cell = Cell(folder / "cell", ROLES, dsn=dsn)
        try:
            cell.start()
            yield cell
        finally:
            cell.stop()


def pids(cell: Cell) -> dict[str, int]:
    processes = {
        "sender": cell[SENDER].process,
        "hub": cell.hub.process,
        "receiver": cell[RECEIVER].process,
    }
    out = {}
    for name, process in processes.items():
        assert process is not None
        out[name] = process.pid
    return out


def measure(store: str, size_mib: int) -> Row:
    """One size in fresh processes: warm up, read idle, transfer, read peaks."""
    with tempfile.TemporaryDirectory() as name, running_cell(store, Path(name)) as cell:
        folder = Path(name)
        small = folder / "warm-up.pdf"
        files = {small: write_pdf(small, 64 * 1024, "warm-up")}
        big = {}
        for n, size in enumerate(document_sizes(size_mib)):
            path = folder / f"document-{n}.pdf"
            big[path] = write_pdf(path, size, f"document {n} of {size_mib} MiB")
        coord = Client(cell[SENDER])
        try:
            case_ref = met_case(coord)
        finally:
            coord.close()
        send_documents(cell, case_ref, files, folder)
        processes = pids(cell)
        idle = {name: vm(pid, "VmRSS") for name, pid in processes.items()}
        if not all(reset_peak(pid) for pid in processes.values()):
            print("note: VmHWM could not be reset; peaks include start-up", file=sys.stderr)
        started = time.perf_counter()
        send_documents(cell, case_ref, big, folder)
        seconds = time.perf_counter() - started
        peak = {name: vm(pid, "VmHWM") for name, pid in processes.items()}
        documents = sum(path.stat().st_size for path in big)
        return Row(store, size_mib, documents, seconds, idle, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1,64,256", help="MiB per envelope, comma-separated")
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(header(), flush=True)
    rows = []
    for store in args.stores.split(","):
        for size in sizes:
            row = measure(store, size)
            rows.append(row)
            print(row.line(), flush=True)
    over = [
        f"{row.store} {row.size_mib} MiB {name} +{row.above(name) / MIB:.1f} MiB"
        for row in rows
        for name in PROCESSES
        if row.above(name) > BOUND
    ]
    if over:
        print("over 64 MiB above idle: " + "; ".join(over))
        sys.exit(1)
    print("every process stays within 64 MiB above its idle RSS at every size")


if __name__ == "__main__":
    main()
