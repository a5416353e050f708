"""The runnable examples run and say what they promise."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
from oversight_checks import assert_nothing_derivable
from ptyrun import run_in_pty

from livcr_exchange.oversight.model import Table

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_offline_cell_demo_runs_every_step() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "offline_cell.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "refused                      purpose_not_allowed" in out
    assert "rejected                     bad_signature" in out
    assert "rejected                     not_a_recipient" in out
    assert re.search(r"PDF in envelope\? +no \(searched for its \d+ bytes and its text\)", out)
    assert re.search(r"CAW opens the PDF +verslag-overleg\.pdf: \d+ bytes, application/pdf", out)
    assert "CLB, not a recipient         rejected not_a_recipient" in out
    assert out.rstrip().endswith("All steps behaved as specified.")


def test_startup_progress_is_silent_off_a_terminal(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from demo_progress import StartupProgress  # noqa: PLC0415  (an example's module)
    finally:
        sys.path.remove(str(EXAMPLES))
    with (tmp_path / "out").open("w") as stream, StartupProgress(2, "starting", stream) as bar:
        bar.done("one")
        bar.done("two")
    assert (tmp_path / "out").read_text() == ""


def test_networked_demo(tmp_path: Path) -> None:
    """`make demo` at a terminal: a hub and six gateways as processes play one case through its
    whole life, a progress bar saying what is ready while they start; then the supervisor
    audits the log (checked in ``check_oversight_report``)."""
    audit_dir = tmp_path / "supervisor"
    code, terminal = run_in_pty(
        [sys.executable, str(EXAMPLES / "networked_cell.py"), "--audit-dir", str(audit_dir)],
        timeout=240,
    )
    out = ANSI_ESCAPE.sub("", terminal).replace("\r\n", "\n")
    assert code == 0, out
    assert re.search(r"starting the cell ━+ 0/8 0:00:00", out)  # at once, not after 18 s
    assert re.search(r"starting the cell: gateway school connected ━+ 8/8 0:00:\d\d", out)
    for expected in (
        "school     -> coord                          aanmelding",
        "ocmw       -> coord                          screening_antwoord",
        "coord      reads: answer: no_answer",
        "uitnodiging_overleg",
        "casusinfo_overleg",
        "verslag_besluit        REFUSED recipient_not_allowed",
        "coord      -> caw                            actieplan",
        "caw        -> coord                          opvolgingsrapport",
        "clb        declines to co-sign",
        "terugkoppelingsfiche   REFUSED cosignature_invalid",
        "io-politie reads: discussed: True",
        "revoked 1 key(s) of ocmw",
        "afsluiting             REFUSED recipient_not_allowed",
        "wissingsbevestiging    REFUSED key_revoked",
        "What the hub stored (metadata only)",
        "log verified: ",
        "every marker was read by a recipient; the hub never held one",
    ):
        assert expected in out, expected
    for holder in ("io-politie", "caw", "clb"):
        assert f"{holder:<10} -> coord{'':<25} wissingsbevestiging" in out
    check_minutes_document(out)
    assert "FAILED" not in out
    assert not re.search(r"\b1[789]\d{8}\b", out)  # no Unix seconds for a person to decode
    assert "All 8 steps behaved as specified" in out.splitlines()[-1]
    check_oversight_report(audit_dir, tmp_path / "exact")


def check_minutes_document(out: str) -> None:
    """The minutes carry a PDF: the hub, holding them for the offline clb, has only ciphertext;
    each member present opens the document and its digest matches; the others have none."""
    assert "coord uploads verslag-overleg.pdf to its gateway: " in out
    assert "coord      -> caw, clb, io-politie           verslag_besluit" in out
    assert re.search(r"the hub holds it for clb, \d+ bytes sealed in", out)
    assert "the PDF's bytes and its text: in neither that envelope nor any of the hub's" in out
    assert "clb's gateway is back and fetches what waited for it" in out
    for member in ("io-politie", "caw", "clb"):
        read = rf"{member:<10} reads: 1 decision\(s\), next [\d-]+, 1 document\(s\) attached"
        assert re.search(read, out), member
        opened = rf"{member:<10} opens verslag-overleg\.pdf: \d+ bytes, application/pdf,"
        assert re.search(opened + r" digest matched the signed body", out), member
        assert f"saved as received/{member}/verslag-overleg.pdf" in out
    for other in ("ocmw", "school"):
        assert f"{other:<10} asks its gateway for the document: 404 not_found" in out
    assert re.search(r"dossiers, logs and the [1-9]\d* document files are sealed", out)


def check_oversight_report(audit_dir: Path, exact_dir: Path) -> None:
    """The report's numbers are the scenario's; it names no case, participant or content; a
    category with 3 events shows "<5" and no published total gives it back."""
    scenario = json.loads((audit_dir / "scenario.json").read_text())
    report_dir = audit_dir / "report"
    for path in (report_dir / "report.json", report_dir / "report.html"):
        text = path.read_text()
        assert scenario["case_ref"] not in text
        for marker in scenario["markers"]:
            assert marker not in text
        for participant in scenario["participants"]:
            assert re.search(rf"(?<![\w-]){re.escape(participant)}(?![\w-])", text) is None, (
                participant,
                path.name,
            )
    html = (report_dir / "report.html").read_text()
    assert "<script" not in html
    assert "src=" not in html
    assert "href=" not in html
    assert "<svg" in html

    # The same verified evidence, reported without suppression: the scenario's exact numbers.
    env = {**os.environ, "LIVCR_PASSPHRASE": "demo gateway passphrase"}
    secret = next(audit_dir.glob("*.secret"))
    evidence = audit_dir / "evidence.json"
    command = [sys.executable, "-m", "livcr_cli", "audit", "report", str(evidence), "--key"]
    command += [str(secret), "--threshold", "1", "--out-dir", str(exact_dir)]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    exact = {t["id"]: t for t in json.loads((exact_dir / "report.json").read_text())["tables"]}
    messages = exact["messages_by_purpose_and_month"]
    by_purpose = {
        name: sum(row) for name, row in zip(messages["rows"], messages["cells"], strict=True)
    }
    assert {p: n for p, n in by_purpose.items() if n} == scenario["purposes"]
    refusals = exact["refusals_by_code"]
    by_code = {
        name: sum(row) for name, row in zip(refusals["rows"], refusals["cells"], strict=True)
    }
    assert by_code == scenario["refusals"]
    transitions = one_column(exact["case_transitions"])
    path = ["none", "signaal_ontvangen", "in_screening", "geagendeerd", "besproken"]
    path += ["traject_lopend", "afgesloten"]
    assert {k: v for k, v in transitions.items() if v} == {
        f"{a} -> {b}": 1 for a, b in itertools.pairwise(path)
    }
    assert one_column(exact["referral_to_first_meeting"])["0-7 days"] == 1
    assert one_column(exact["deletion_confirmations"]) == {"received": 3, "missing": 0}
    assert one_column(exact["retention"]) == {
        "within retention": 1,
        "past retention, not purged": 0,
    }
    membership = exact["membership_changes"]
    assert membership["column_totals"] == [4, 0]  # io-politie, caw, clb and ocmw joined the case
    keys = dict(
        zip(exact["key_events"]["columns"], exact["key_events"]["column_totals"], strict=True)
    )
    assert (keys["enrolment"], keys["revocation"]) == (7, 1)

    # casusinfo_overleg: sent by io-politie, caw and clb. Shown "<5", and not derivable.
    published = json.loads((report_dir / "report.json").read_text())
    tables = {t["id"]: t for t in published["tables"]}
    assert scenario["purposes"]["casusinfo_overleg"] == 3
    shown = tables["messages_by_purpose_and_month"]
    row = shown["cells"][shown["rows"].index("casusinfo_overleg")]
    assert row == ["<5"] * len(row)
    for table in published["tables"]:
        true = exact[table["id"]]
        hidden = hidden_positions(table, true)
        assert_nothing_derivable(msgspec.convert(table, Table), hidden)


def one_column(table: dict[str, Any]) -> dict[str, int]:
    return {name: row[0] for name, row in zip(table["rows"], table["cells"], strict=True)}


def hidden_positions(table: dict[str, Any], true: dict[str, Any]) -> dict[tuple[int, int], int]:
    """The true values of the positions ``table`` hides, on the grid with totals last."""
    rows, columns = len(table["rows"]), len(table["columns"])
    if columns == 1:
        return {}
    grid_shown = [[*r, t] for r, t in zip(table["cells"], table["row_totals"], strict=True)]
    grid_shown.append([*table["column_totals"], table["total"]])
    grid_true = [[*r, t] for r, t in zip(true["cells"], true["row_totals"], strict=True)]
    grid_true.append([*true["column_totals"], true["total"]])
    return {
        (r, c): grid_true[r][c]
        for r in range(rows + 1)
        for c in range(columns + 1)
        if isinstance(grid_shown[r][c], str)
    }
