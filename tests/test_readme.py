"""The README's shell blocks work as written: each runs, end to end, and does what it says.

Only folders, ports and the PostgreSQL database name are changed, so that a run cannot collide
with anything else on the machine; the commands are the README's own. Servers a block leaves
running in the background are stopped when the block's shell exits. Every block runs while a
CPU burner keeps each core busy: a block that waits by sleeping a fixed time instead of on
readiness fails here as it would on a loaded machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hubproc import free_port

from livcr_cli import main

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_SECTION = "## For a service: running a gateway"
# Stops the background jobs a block started, however it ends.
STOP_JOBS = "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n"


BURN = "while True: pass"


@pytest.fixture(autouse=True)
def loaded_machine() -> Iterator[None]:
    """One busy process per core for the duration of each test."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def all_blocks() -> list[str]:
    """Every fenced block of the README."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```[a-z]*\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def test_no_block_waits_by_sleeping() -> None:
    blocks = all_blocks()
    assert len(blocks) >= 6
    assert [b for b in blocks if re.search(r"\bsleep\b", b)] == []


def test_how_to_attack_this_names_the_threat_model_tools_and_where_to_report() -> None:
    """The security tester's section: spec §15 (which is the threat model), commands that
    exist, and a SECURITY.md that says where a finding goes."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### How to attack this") : text.index("## For a hub operator")]
    assert "spec §15" in section
    assert "### 15.1 Threat model" in (ROOT / "specs" / "livcr-exchange.md").read_text()
    assert "[`SECURITY.md`](SECURITY.md)" in section
    assert "Reporting a vulnerability" in (ROOT / "SECURITY.md").read_text()
    commands = set(re.findall(r"`livcr ((?:[a-z]+ )*[a-z]+)", section))
    assert {"inspect", "vectors verify", "vectors extract", "purposes schema"} <= commands
    for command in sorted(commands):
        result = CliRunner().invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_the_embedding_example_is_the_script_in_examples() -> None:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert match is not None
    assert match.group(1) == (ROOT / "examples" / "embedded_gateway.py").read_text()


def shell_block(section: str) -> str:
    """The first fenced block after the heading ``section``."""
    text = (ROOT / "README.md").read_text()
    rest = text[text.index(section) :]
    match = re.search(r"^```\n(.*?)^```$", rest, re.MULTILINE | re.DOTALL)
    assert match is not None, f"{section!r} has no shell block"
    return match.group(1)


def run_block(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["bash", "-e", "-c", STOP_JOBS + script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a deadline for a hung block: full-cost Argon2id is slow on a busy machine
        check=False,
    )
    logs = "".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in folder.rglob("*.log"))
    assert result.returncode == 0, result.stdout + result.stderr + logs
    return result


def test_the_security_testers_commands_run_as_written(tmp_path: Path) -> None:
    script = shell_block("## For a security tester")
    assert script.startswith("make test")  # the suite itself: this very run
    script = script.replace("make test", ":", 1)
    script = script.replace("/tmp/vectors", str(tmp_path / "v"))  # noqa: S108  (replaced)
    result = run_block(script, tmp_path)
    assert re.search(r"^\d+ passed, 0 failed$", result.stdout, re.MULTILINE)
    assert "no byte changed" in result.stdout


def test_the_hub_operators_commands_and_a_restored_backup(tmp_path: Path) -> None:
    """The operator's block (a serving hub with a log), then the backup and restore block: the
    restored store's log verifies."""
    script = shell_block("## For a hub operator") + shell_block("### Backup and restore")
    script = (
        script.replace("/srv/livcr", str(tmp_path / "livcr"))
        .replace("/backup/livcr", str(tmp_path / "backup"))
        .replace("/tmp/keys", str(tmp_path / "keys"))  # noqa: S108  (the README's, replaced)
        .replace("--cell-id gent ", f"--cell-id gent --port {free_port()} ", 1)
    )
    result = run_block(script, tmp_path)
    verified = re.findall(
        r"^log verified: (\d+) leaves .*, (\d+) checkpoints$", result.stdout, re.M
    )
    assert len(verified) == 3, result.stdout  # the live log, the backup, the restored store
    live, backup, restored = verified
    assert int(backup[0]) >= int(live[0]) > 0
    assert restored == backup
    assert (tmp_path / "livcr-restored" / "hub.sqlite3").exists()
    assert re.search(r"^  caw +deelnemer +0207437468 +revoked or expired", result.stdout, re.M)
    assert "would purge 0 case(s); nothing deleted (--dry-run)" in result.stdout
    assert '"cell_id": "gent"' in (tmp_path / "keys" / "cell.json").read_text()


def test_the_postgresql_operators_commands_run_as_written(tmp_path: Path) -> None:
    script = shell_block("## Running the hub on PostgreSQL with several processes")
    database = f"livcr_test_readme_{uuid.uuid4().hex[:12]}"
    script = (
        script.replace("-U postgres livcr ", f"-U postgres {database} ", 1)
        .replace("5432/livcr", f"5432/{database}")
        .replace("/srv/livcr-pg", str(tmp_path / "livcr-pg"))
        .replace("/tmp/keys-pg", str(tmp_path / "keys-pg"))  # noqa: S108  (replaced)
    )
    for port in ("8701", "8702"):
        script = script.replace(port, str(free_port()))
    assert database in script
    try:
        result = run_block(script, tmp_path)
    finally:
        subprocess.run(
            ["dropdb", "--if-exists", "--force", "-h", "127.0.0.1", "-U", "postgres", database],
            check=False,
            capture_output=True,
        )
    assert result.stdout.count('"status":"ok"') == 2, result.stdout  # both processes answer
    assert "log verified" in result.stdout


def test_the_gateway_walk_through_runs_as_written(tmp_path: Path) -> None:
    script = shell_block(GATEWAY_SECTION).replace("/srv/cell", str(tmp_path / "cell"))
    for port in ("8700", "8801", "8802"):
        script = script.replace(port, str(free_port()))
    result = run_block(script, tmp_path / "cell")
    assert "sent " in result.stdout  # the hub's receipt, its inclusion proof checked
    # The embedded gateway (examples/embedded_gateway.py): its own lines, none of its log's.
    embedded = result.stdout[result.stdout.index("log verified") :].splitlines()[1:]
    assert len(embedded) == 2, embedded
    assert re.fullmatch(
        r"referred case-[a-z2-7]{26}: leaf \d+ of the hub's log, proven", embedded[0]
    )
    assert embedded[1] == "inbox read"
    assert re.search(r"aanmelding\s+case-3qjq2aszrm73emf4k3xvf3l4he\s+from caw", result.stdout)
    assert "log verified" in result.stdout
    export = (tmp_path / "cell" / "export.json").read_text()
    assert '"case_ref": "case-3qjq2aszrm73emf4k3xvf3l4he"' in export
