"""The runnable examples run and say what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ptyrun import run_in_pty

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


def test_networked_demo() -> None:
    """`make demo` at a terminal: a hub and six gateways as processes play one case through its
    whole life; while they start, a progress bar says what is ready."""
    code, terminal = run_in_pty([sys.executable, str(EXAMPLES / "networked_cell.py")], timeout=180)
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
    assert "FAILED" not in out
    assert not re.search(r"\b1[789]\d{8}\b", out)  # no Unix seconds for a person to decode
    assert "All 8 steps behaved as specified" in out.splitlines()[-1]
