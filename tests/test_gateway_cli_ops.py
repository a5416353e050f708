"""`livcr gateway` for an operator and a coordinator, against served gateways (real processes):
``status --wait-ready`` instead of a fixed sleep, one process per folder, the coordinator's case
commands (open, show, members, meeting, move, cosign, erase), the outbox's list, ``migrate``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_harness import GatewayCell
from test_gateway_cli import ENV, Served, run, write_body

from livcr_exchange.roles import Role


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[GatewayCell]:
    roles = {"coord": Role.COORDINATOR, "caw": Role.DEELNEMER, "clb": Role.DEELNEMER}
    cell = GatewayCell.create(tmp_path, roles)
    try:
        yield cell
    finally:
        cell.hub.stop()


def test_wait_ready_then_the_coordinators_case_commands(cell: GatewayCell, tmp_path: Path) -> None:
    coord_config = str(cell.configs["coord"])
    code, output = run("gateway", "status", "--config", coord_config, "--wait-ready", "0.5")
    assert code == 1
    assert "not ready within 0.5 s" in output
    coord = Served(cell.configs["coord"])
    try:
        code, output = run("gateway", "status", "--config", coord_config, "--wait-ready", "30")
        assert code == 0, output
        assert "gateway coord: running, connected to the hub" in output

        # One process per folder: a second `serve` of the same folder does not start.
        second = subprocess.run(
            [sys.executable, "-m", "livcr_cli", "gateway", "serve", "--config", coord_config],
            capture_output=True,
            text=True,
            env={**ENV, "PATH": "/usr/bin:/bin"},
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert "one process per gateway folder" in second.stderr

        case = ("--config", coord_config)
        code, case_ref = run("gateway", "case", "open", *case, "--members", "caw")
        assert code == 0, case_ref
        case_ref = case_ref.strip()
        code, output = run("gateway", "case", "members", case_ref, *case, "--add", "clb")
        assert code == 0, output
        assert json.loads(output)["members"] == ["caw", "clb", "coord"]
        for state in ("in_screening", "geagendeerd", "besproken"):
            code, output = run("gateway", "case", "move", case_ref, *case, "--to", state)
            assert code == 0, output
        code, output = run(
            "gateway", "case", "meeting", case_ref, *case,
            "--meeting", "meeting-1", "--present", "coord,caw",
        )  # fmt: skip
        assert code == 0, output
        assert json.loads(output)["meetings"] == {"meeting-1": ["caw", "coord"]}
        code, output = run("gateway", "case", "show", case_ref, *case)
        assert code == 0, output
        shown = json.loads(output)
        assert (shown["case_ref"], shown["state"]) == (case_ref, "besproken")
        fiche = write_body(
            tmp_path / "fiche.json",
            "terugkoppelingsfiche",
            case_ref=case_ref,
            meeting_ref="meeting-1",
        )
        code, output = run(
            "gateway", "case", "cosign", case_ref, *case, "--meeting", "meeting-1",
            "--body", str(fiche), "--to", "caw,coord", "--deadline", "4102444800",
        )  # fmt: skip
        assert code == 0, output
        assert json.loads(output)["signer_id"] == "coord"
        assert json.loads(output)["deadline"] == 4102444800
        code, output = run("gateway", "case", "erase", case_ref, *case)
        assert (code, output.strip()) == (0, f"erased 0 records of {case_ref}")
        code, output = run("gateway", "outbox", "list", *case)
        assert (code, output.strip()) == (0, "the outbox holds nothing in that state")
        code, output = run("gateway", "case", "show", "Not A Case", *case)
        assert code == 2
    finally:
        assert coord.stop() == 0


def test_migrate_brings_a_store_up_to_date(cell: GatewayCell) -> None:
    code, output = run("gateway", "migrate", "--config", str(cell.configs["caw"]))
    assert code == 0, output
    assert output.startswith("store at schema ")
