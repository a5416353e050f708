"""The runnable examples run and say what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_networked_demo() -> None:
    """`make demo`: a hub and six gateways as processes play one case through its whole life."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "networked_cell.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
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
    assert "All 8 steps behaved as specified" in out.splitlines()[-1]
