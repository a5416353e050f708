"""The package as a user installs it: the wheel, into a fresh virtual environment of its own."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, ROOT, cwd=tmp_path)
    (wheel,) = tmp_path.glob("livcr_exchange-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    # Run outside the checkout, so nothing can be imported from the source tree.
    assert run(venv / "bin" / "livcr", "--version", cwd=tmp_path).strip().endswith(version)
    listed = run(venv / "bin" / "livcr", "purposes", "list", cwd=tmp_path)
    assert listed.startswith("aanmelding: referral of a person to the cell\n")
    assert "terugkoppelingsfiche:" in listed
    where = run(venv / "bin" / "python", "-c", "import hub; print(hub.__file__)", cwd=tmp_path)
    assert where.startswith(str(venv))
