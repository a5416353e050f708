"""deploy/: the systemd units verify and are sandboxed; services report readiness by sd_notify."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubproc import HubProcess

from livcr_exchange.roles import Role
from livcr_exchange.service.sdnotify import sd_notify

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("livcr-hub.service", "livcr-gateway@.service")
INSTALLED_LIVCR = "/opt/livcr/venv/bin/livcr"
SANDBOX = (
    "Type=notify",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "CapabilityBoundingSet=\n",
    "SystemCallFilter=@system-service",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "UMask=0077",
)


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_sandboxed(unit: str) -> None:
    text = (DEPLOY / unit).read_text()
    for directive in SANDBOX:
        assert f"\n{directive}" in text, directive


@pytest.fixture
def installed_units(tmp_path: Path) -> Path:
    """The units as installed, with ExecStart pointing at this checkout's `livcr`."""
    livcr = Path(sys.executable).parent / "livcr"
    for unit in UNITS:
        text = (DEPLOY / unit).read_text().replace(INSTALLED_LIVCR, str(livcr))
        name = unit.replace("@.", "@caw.")  # a template verifies as an instance
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_units(installed_units: Path) -> None:
    units = sorted(str(p) for p in installed_units.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify only warns about unknown keys and bad values: any output is a finding.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    for unit in units:
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", unit],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
        assert found is not None, result.stdout + result.stderr
        assert float(found[1]) <= 2.0, result.stdout  # systemd rates up to 2.0 "OK"


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A socket standing in for systemd's, named in $NOTIFY_SOCKET for the processes started."""
    path = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield listener
    finally:
        listener.close()


def test_sd_notify_sends_one_datagram(notify_socket: socket.socket) -> None:
    assert sd_notify("READY=1", "STATUS=serving")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=serving"


def test_sd_notify_without_a_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "@livcr-test-nobody-listens")
    assert sd_notify("READY=1") is False


def test_the_hub_notifies_readiness_once_it_listens(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    hub = HubProcess.create(tmp_path / "hub", {"coord": Role.COORDINATOR})
    notify_socket.settimeout(60)  # a deadline, not a pause: recv returns as soon as it comes
    hub.start()
    try:
        message = notify_socket.recv(4096).decode()
    finally:
        hub.stop()
    assert message == f"READY=1\nSTATUS=serving http://127.0.0.1:{hub.port}"
