"""`livcr gateway` for an operator and a coordinator, against served gateways (real processes):
``status --wait-ready`` instead of a fixed sleep, one process per folder, the coordinator's case
commands (open, show, members, meeting, move, cosign, erase), the outbox's list, retry and
discard, ``migrate``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import case_ref as fixed_case_ref
from gateway_harness import GatewayCell
from test_gateway_cli import ENV, Served, run, write_body
from test_gateway_local_api import wait_for

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


def test_a_refused_message_is_listed_retried_and_discarded(
    cell: GatewayCell, tmp_path: Path
) -> None:
    """A question on a case the hub does not know is refused for good: the operator sees it in
    ``outbox list``, sends it again with ``retry`` (refused again) and gives it up with
    ``discard``; a second discard says there is nothing to discard."""
    coord = Served(cell.configs["coord"])
    try:
        coord.wait_ready()
        config = ("--config", str(cell.configs["coord"]))
        unknown = fixed_case_ref("never opened")
        question = write_body(tmp_path / "question.json", "screening_vraag")
        code, output = run(
            "gateway", "send", *config, "--case", unknown, "--purpose", "screening_vraag",
            "--to", "caw", "--body", str(question),
        )  # fmt: skip
        assert code != 0
        assert "case_state_forbids" in output

        def failed() -> list[str]:
            code, output = run("gateway", "outbox", "list", *config, "--state", "failed")
            assert code == 0, output
            return [line for line in output.splitlines() if unknown in line]

        (line,) = failed()
        message_id = line.split()[0]
        assert "failed" in line
        assert "case_state_forbids" in line
        code, output = run("gateway", "outbox", "retry", *config, message_id)
        assert (code, output.strip()) == (0, f"{message_id}: pending again")
        wait_for("the retry is refused again", lambda: len(failed()) == 1)
        code, output = run("gateway", "outbox", "discard", *config, message_id)
        assert (code, output.strip()) == (0, f"{message_id}: discarded")
        assert failed() == []
        code, output = run("gateway", "outbox", "discard", *config, message_id)
        assert code != 0
        assert "not_found" in output
    finally:
        assert coord.stop() == 0
