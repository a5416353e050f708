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
