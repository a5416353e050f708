"""A hub process logs its start and stop as JSON lines, with nothing before them in plain text."""

from __future__ import annotations

import json
from pathlib import Path

from hubproc import HubProcess

from livcr_exchange.roles import Role


def test_hub_start_and_stop_lines(tmp_path: Path) -> None:
    hub = HubProcess.create(tmp_path / "hub", {"coord": Role.COORDINATOR})
    hub.start()
    hub.stop()
    lines = (hub.directory / hub.log_name).read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is JSON: no banner
    started = next(e for e in events if e["event"] == "hub started")
    assert events[0] is started
    assert started["cell"] == "testcell"
    assert started["listen"] == f"http://127.0.0.1:{hub.port}"
    assert started["store"] == f"sqlite:{(hub.directory / 'hub.sqlite3').resolve()}"
    assert started["version"].count(".") == 2
    stopped = events[-1]
    assert stopped["event"] == "hub stopped"
    assert {k: stopped[k] for k in ("cell", "listen", "store", "version")} == {
        k: started[k] for k in ("cell", "listen", "store", "version")
    }
