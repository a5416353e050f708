"""The README's gateway walk-through works as written: its shell block runs, end to end.

Only the folder (/srv/cell) and the ports are changed, so that the run cannot collide with
anything else on the machine; the commands are the README's own.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from hubproc import free_port

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## For a service: running a gateway"


def walk_through() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    match = re.search(r"^```\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert match is not None, "the section has no shell block"
    return match.group(1)


def test_the_gateway_walk_through_runs_as_written(tmp_path: Path) -> None:
    script = walk_through().replace("/srv/cell", str(tmp_path / "cell"))
    for port in ("8700", "8801", "8802"):
        script = script.replace(port, str(free_port()))
    result = subprocess.run(
        ["bash", "-e", "-c", f"mkdir -p {tmp_path / 'cell'}\n{script}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    logs = "".join(
        f"--- {p.name}\n{p.read_text()[-2000:]}" for p in (tmp_path / "cell").glob("*.log")
    )
    assert result.returncode == 0, result.stdout + result.stderr + logs
    assert "sent " in result.stdout  # the hub's receipt, its inclusion proof checked
    assert re.search(r"aanmelding\s+case-0001\s+from caw", result.stdout)
    assert "log verified" in result.stdout
    export = (tmp_path / "cell" / "export.json").read_text()
    assert '"case_ref": "case-0001"' in export
