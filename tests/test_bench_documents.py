"""`bench/bench_documents.py` runs end to end at a tiny size: a hub and two gateways as
processes, a 1 MiB document uploaded, sent, received, downloaded and checked, a row printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_documents.py"


def test_the_documents_bench_runs_at_one_mib_on_sqlite() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "1", "--stores", "sqlite"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("sqlite")]
    assert len(rows) == 1
    store, size, documents, seconds = rows[0][:4]
    assert (store, size) == ("sqlite", "1")
    assert 0.9 < float(documents) <= 1.0
    assert float(seconds) > 0
    assert rows[0][-1] == "yes"
    assert "every process stays within 64 MiB above its idle RSS" in done.stdout
