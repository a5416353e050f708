"""`livcr gateway ...` through the real entry point: init, serve (a real process), send, inbox,
export, status; a clean stop on SIGTERM and SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import requests
from click.testing import CliRunner
from gateway_harness import CHEAP_KEYS, PASSPHRASE, GatewayCell
from waiting import gauge, wait_until

from gateway.config import load_config
from livcr_cli import main
from livcr_exchange.conformance import CellInputs
from livcr_exchange.keys import IdentityKey
from livcr_exchange.purpose_examples import example_body
from livcr_exchange.purposes import encode_body
from livcr_exchange.roles import Role

ENV = {"LIVCR_PASSPHRASE": PASSPHRASE.decode()}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=ENV if env is None else env)
    return result.exit_code, result.output


@pytest.fixture
def cheap_keyfiles(monkeypatch: pytest.MonkeyPatch) -> None:
    # Full Argon2id cost (256 MiB) would dominate the test; the cost is recorded in each file.
    from livcr_exchange import keyfile  # noqa: PLC0415

    original = keyfile.lock

    def cheap(bundle, passphrase, random, **_: int):  # type: ignore[no-untyped-def]
        return original(bundle, passphrase, random, opslimit=CHEAP_KEYS[0], memlimit=CHEAP_KEYS[1])

    monkeypatch.setattr("gateway.setup.lock", cheap)


def public_key() -> str:
    return IdentityKey.from_seed(os.urandom(32)).public.to_text()


def init_args(directory: Path, **changes: str) -> list[str]:
    options = {
        "--participant-id": "caw",
        "--cell-id": "gent",
        "--root-key": public_key(),
        "--hub-url": "http://127.0.0.1:8700",
        "--hub-log-key": public_key(),
        **changes,
    }
    return ["gateway", "init", str(directory), *(x for kv in options.items() for x in kv)]


@pytest.mark.usefixtures("cheap_keyfiles")
def test_init_creates_keys_config_token_and_bundle(tmp_path: Path) -> None:
    folder = tmp_path / "caw"
    code, output = run(*init_args(folder), "--suite", "x25519", "--api-port", "8811")
    assert code == 0, output
    assert "caw.public.json" in output
    config = load_config(folder / "gateway.toml")
    assert (config.participant_id, config.gateway.suite, config.api.port) == ("caw", "x25519", 8811)
    bundle = json.loads((folder / "caw.public.json").read_text())
    assert bundle["participant_id"] == "caw"
    assert bundle["identity_key"].startswith("livcr-ed25519:")
    assert len(bundle["prekeys"]) == 2
    for name in ("identity.secret", "local.key", "api.token"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert len((folder / "api.token").read_text().strip()) >= 32

    code, output = run(*init_args(folder))
    assert code == 1
    assert "already holds a gateway" in output


@pytest.mark.usefixtures("cheap_keyfiles")
def test_without_a_terminal_a_missing_passphrase_names_its_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, init_args(tmp_path / "gw"), env={"LIVCR_PASSPHRASE": None})
    assert result.exit_code == 1
    assert result.output == (
        "Error: no key file passphrase: set LIVCR_PASSPHRASE (there is no terminal to ask on)\n"
    )
    assert not (tmp_path / "gw").exists()
    code, output = run(*init_args(tmp_path / "gw"))
    assert code == 0, output
    config = str(tmp_path / "gw" / "gateway.toml")
    result = CliRunner().invoke(
        main, ["gateway", "serve", "--config", config], env={"LIVCR_PASSPHRASE": None}
    )
    assert result.exit_code == 1
    assert "set LIVCR_PASSPHRASE (there is no terminal to ask on)" in result.output
    assert "Aborted" not in result.output


@pytest.mark.usefixtures("cheap_keyfiles")
def test_config_check_names_what_is_wrong(tmp_path: Path) -> None:
    folder = tmp_path / "caw"
    code, output = run(*init_args(folder), "--api-port", "8812")
    assert code == 0, output
    config = folder / "gateway.toml"
    code, output = run("gateway", "config", "check", env={**ENV, "LIVCR_CONFIG": str(config)})
    assert code == 0, output
    assert output == (
        f"{config}: valid\n  caw in cell gent, hub http://127.0.0.1:8700,"
        " local API http://127.0.0.1:8812\n"
    )
    (folder / "api.token").chmod(0o644)
    code, output = run("gateway", "config", "check", "--config", str(config))
    assert code == 1
    assert output == (
        f"Error: {folder / 'api.token'}: the API token is readable by others (chmod 600)\n"
    )
    (folder / "api.token").chmod(0o600)
    (folder / "local.key").unlink()
    code, output = run("gateway", "config", "check", "--config", str(config))
    assert code == 1
    assert output == f"Error: {config}: {folder / 'local.key'} is missing\n"


@pytest.mark.usefixtures("cheap_keyfiles")
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--participant-id", "CAW Gent"),
        ("--cell-id", "-gent"),
        ("--root-key", "livcr-ed25519:nope"),
        ("--hub-log-key", "not a key"),
        ("--hub-url", "ftp://hub"),
    ],
)
def test_init_refuses_bad_input_and_writes_nothing(tmp_path: Path, option: str, value: str) -> None:
    code, output = run(*init_args(tmp_path / "gw", **{option: value}))
    assert code == 2, output
    assert option in output
    assert not (tmp_path / "gw").exists()


@pytest.mark.usefixtures("cheap_keyfiles")
def test_init_refuses_an_empty_passphrase(tmp_path: Path) -> None:
    code, output = run(*init_args(tmp_path / "gw"), env={"LIVCR_PASSPHRASE": ""})
    assert code == 1
    assert "may not be empty" in output


# A running gateway.
class Served:
    """`livcr gateway serve` in its own process."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log = config.parent / "serve.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "livcr_cli", "gateway", "serve", "--config", str(config)],
                stdout=log,
                stderr=log,
                env={**os.environ, **ENV, **(env or {})},
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            if run("gateway", "status", "--config", str(self.config))[0] == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(self.log.read_text())

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[GatewayCell]:
    cell = GatewayCell.create(tmp_path, {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER})
    try:
        yield cell
    finally:
        cell.hub.stop()


def use_unix_socket(config: Path) -> None:
    text = config.read_text()
    config.write_text(text.replace("[api]\n", '[api]\nunix_socket = "api.sock"\n', 1))


def write_body(path: Path, purpose: str, **changes: Any) -> Path:
    body = example_body(purpose)
    if changes:
        body = msgspec.structs.replace(body, **changes)
    path.write_bytes(encode_body(body))
    return path


def test_serve_send_inbox_export_and_stop(cell: GatewayCell, tmp_path: Path) -> None:
    coord_config, caw_config = str(cell.configs["coord"]), str(cell.configs["caw"])
    use_unix_socket(cell.configs["coord"])  # the coordinator listens on a Unix socket
    # caw runs as systemd's Type=notify would run it: a datagram socket named in $NOTIFY_SOCKET.
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(30)  # a deadline, not a pause: recv returns as soon as the datagram comes
    coord = Served(cell.configs["coord"])
    caw = Served(cell.configs["caw"], env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        coord.wait_ready()
        caw.wait_ready()
        caw_port = load_config(cell.configs["caw"]).api.port
        assert notify.recv(4096) == f"READY=1\nSTATUS=serving http://127.0.0.1:{caw_port}".encode()
        socket_path = cell.directory / "coord" / "api.sock"
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600

        code, output = run("gateway", "status", "--config", coord_config)
        assert code == 0, output
        assert "gateway coord: running, connected to the hub" in output

        body = write_body(tmp_path / "referral.json", "aanmelding")
        code, output = run(
            "gateway", "send", "--config", caw_config, "--case", "case-h6uh6empvp4zla6f4kweufkblq",
            "--purpose", "aanmelding", "--to", "coord", "--body", str(body),
        )  # fmt: skip
        assert code == 0, output
        assert output.startswith("sent ")
        assert " as leaf " in output
        message_id = output.split()[1].rstrip(":")

        code, output = run("gateway", "inbox", "--config", coord_config, "--wait", "10")
        assert code == 0, output
        lines = output.splitlines()
        assert "aanmelding" in lines[0]
        assert "case-h6uh6empvp4zla6f4kweufkblq" in lines[0]
        assert lines[0].endswith("from caw")
        assert lines[-1].startswith("next: --after ")
        after = lines[-1].split()[-1]
        code, output = run("gateway", "inbox", "--config", coord_config, "--json")
        page = json.loads(output)
        assert [m["message_id"] for m in page["messages"]] == [message_id]
        assert page["messages"][0]["body"] == json.loads(body.read_text())
        code, output = run("gateway", "inbox", "--config", coord_config, "--after", after)
        assert (code, output.strip()) == (0, f"no messages after {after}")

        code, output = run(
            "gateway", "export", "case-h6uh6empvp4zla6f4kweufkblq", "--config", caw_config
        )
        assert code == 0, output
        export = json.loads(output)
        assert export["case_ref"] == "case-h6uh6empvp4zla6f4kweufkblq"
        assert [r["message_id"] for r in export["records"]] == [message_id]
        assert "inclusion_proof" in export["records"][0]
        out = tmp_path / "export.json"
        code, output = run(
            "gateway",
            "export",
            "case-h6uh6empvp4zla6f4kweufkblq",
            "--config",
            caw_config,
            "--out",
            str(out),
        )
        assert code == 0, output
        assert json.loads(out.read_text())["records"] == export["records"]
        assert stat.S_IMODE(out.stat().st_mode) == 0o600

        # Refusals are reported with their code; nothing is sent.
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**json.loads(body.read_text()), "extra": 1}))
        code, output = run(
            "gateway", "send", "--config", caw_config, "--case", "case-lgf6gqyambw4b2pov7o4cfxvkm",
            "--purpose", "aanmelding", "--to", "coord", "--body", str(bad),
        )  # fmt: skip
        assert code == 1
        assert "refused (422 body_schema_violation)" in output
        (tmp_path / "not.json").write_text("{")
        code, output = run(
            "gateway", "send", "--config", caw_config, "--case", "case-lgf6gqyambw4b2pov7o4cfxvkm",
            "--purpose", "aanmelding", "--to", "coord", "--body", str(tmp_path / "not.json"),
        )  # fmt: skip
        assert code == 1
        assert "--body is not JSON" in output

        # SIGTERM while a client long-polls: the poll is answered, the process exits cleanly.
        caw_api = load_config(cell.configs["caw"]).api
        token = (cell.directory / "caw" / "api.token").read_text().strip()
        answer: dict[str, Any] = {}

        def long_poll() -> None:
            response = requests.get(
                f"http://127.0.0.1:{caw_api.port}/v1/messages",
                params={"after": 2**62, "wait": 30},
                headers={"Authorization": f"Bearer {token}"},
                timeout=40,
            )
            answer.update(status=response.status_code, page=response.json())

        def parked() -> bool:
            metrics = requests.get(
                f"http://127.0.0.1:{caw_api.port}/metrics",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).text
            return gauge(metrics, "livcr_gateway_long_polls") == 1

        poller = threading.Thread(target=long_poll)
        poller.start()
        wait_until(parked, "the long poll to be parked")
        started = time.monotonic()
        assert caw.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 10
        poller.join(timeout=10)
        assert answer == {"status": 200, "page": {"messages": [], "next_after": 2**62}}
        assert coord.stop(signal.SIGINT) == 0
        assert not socket_path.exists()
        for served in (coord, caw):
            log = served.log.read_text()
            lines = [json.loads(line) for line in log.splitlines()]  # JSON only: no banner
            events = [line["event"] for line in lines]
            assert events[0] == "gateway started"
            assert set(lines[0]) >= {"version", "cell", "participant", "store", "listen"}
            assert lines[0]["cell"] == lines[-1]["cell"] == "testcell"
            assert "gateway stopping" in events
            assert events[-1] == "gateway stopped"
            assert "Traceback" not in log

        code, output = run("gateway", "status", "--config", caw_config)
        assert code == 1
        assert "no gateway answers at" in output

        # The directory caw verified, as a file for `livcr inspect --directory`: the hub's own.
        code, kept = run("gateway", "directory", "export", "--config", caw_config)
        assert code == 0, kept
        code, served = run("hub", "directory", "export", "--config", str(cell.hub.config_path))
        assert code == 0, served
        assert json.loads(kept) == json.loads(served)
        cell_inputs = msgspec.json.decode(kept.encode(), type=CellInputs)
        assert {e.participant_id for e in cell_inputs.directory().entries} >= {"caw", "coord"}
    finally:
        coord.stop()
        caw.stop()
        notify.close()


def test_serve_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cell = GatewayCell.create(tmp_path, {"caw": Role.DEELNEMER}, start=False)
    monkeypatch.setattr("gateway.serving.configure_logging", lambda *_: None)
    config = str(cell.configs["caw"])
    code, output = run("gateway", "serve", "--config", config, env={"LIVCR_PASSPHRASE": "wrong"})
    assert code == 1
    assert "the gateway did not start" in output
    token = cell.directory / "caw" / "api.token"
    token.chmod(0o644)
    code, output = run("gateway", "serve", "--config", config)
    assert code == 1
    assert "readable by others" in output
    code, output = run("gateway", "serve", "--config", str(cell.directory / "missing.toml"))
    assert code == 1
    assert "cannot read" in output
    token.chmod(0o600)
    code, output = run("gateway", "serve", "--config", config)  # the hub is not running
    assert code == 1
    assert "did not answer" in output
