"""The operator's commands through the real `livcr` entry point."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import StoreTarget

from hub.operator import default_purposes
from livcr_cli import main
from livcr_exchange.roles import Role

ENV = {"LIVCR_ROOT_PASSPHRASE": "root pw", "LIVCR_PASSPHRASE": "participant pw"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=ENV)
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def cheap_keyfiles(monkeypatch: pytest.MonkeyPatch) -> None:
    # Full Argon2id cost (256 MiB) per key file would dominate the test; the cost is recorded in
    # each file, so tests may use the minimum without changing the format.
    from livcr_exchange import keyfile  # noqa: PLC0415

    original = keyfile.lock

    def cheap(bundle, passphrase, random, **_: int):  # type: ignore[no-untyped-def]
        return original(bundle, passphrase, random, opslimit=1, memlimit=8192)

    monkeypatch.setattr("hub.keyfiles.lock", cheap)
    monkeypatch.setattr("livcr_exchange.service.cli.lock", cheap)


@pytest.fixture
def cell(tmp_path: Path) -> Path:
    code, output = run("hub", "init", str(tmp_path / "cell"), "--cell-id", "gent")
    assert code == 0, output
    for participant in ("coord", "caw"):
        code, output = run("keys", "new", participant, "--out", str(tmp_path / "keys"))
        assert code == 0, output
    return tmp_path


def test_init_writes_a_config_and_private_keys(cell: Path) -> None:
    folder = cell / "cell"
    assert (folder / "hub.toml").read_text().count('cell_id = "gent"') == 1
    for name in ("root.secret", "log.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    code, output = run("hub", "init", str(folder), "--cell-id", "gent")
    assert code == 1
    assert "already holds a cell" in output


@pytest.fixture
def cell_config(cell: Path, store_target: StoreTarget) -> str:
    """The cell's config, on SQLite or (its [store] section rewritten) on PostgreSQL."""
    config = cell / "cell" / "hub.toml"
    sqlite_section = '[store]\nkind = "sqlite"\npath = "hub.sqlite3"\n'
    if store_target.kind == "postgresql":
        assert sqlite_section in config.read_text()
        config.write_text(config.read_text().replace(sqlite_section, store_target.toml()))
    code, output = run("hub", "migrate", "--config", str(config))
    assert code == 0, output
    return str(config)


def test_enrol_status_revoke_and_export(cell: Path, cell_config: str) -> None:
    config = cell_config
    for participant, role in (("coord", "coordinator"), ("caw", "deelnemer")):
        code, output = run(
            "hub",
            "enrol",
            "--config",
            config,
            "--bundle",
            str(cell / "keys" / f"{participant}.public.json"),
            "--role",
            role,
            "--organisation",
            "0207437468",
        )
        assert code == 0, output
        assert f"enrolled {participant} as {role}" in output
    code, output = run("hub", "status", "--config", config, "--json")
    report = json.loads(output)
    assert {p["id"]: p["status"] for p in report["participants"]} == {
        "caw": "active",
        "coord": "active",
    }
    code, output = run("hub", "revoke", "--config", config, "caw", "--reason", "left the cell")
    assert code == 0, output
    code, output = run("hub", "status", "--config", config, "--json")
    statuses = {p["id"]: p["status"] for p in json.loads(output)["participants"]}
    assert statuses["caw"] == "revoked or expired"
    code, output = run("hub", "status", "--config", config)
    assert code == 0, output
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.search(
        r"^cell gent: NOT serving at http://127\.0\.0\.1:8700; livcr-exchange ", output
    )
    assert re.search(r"store schema \d+\nlog size \d+, no checkpoint signed yet;", output)
    assert re.search(
        rf"^  caw +deelnemer .* revoked or expired, enrolled until {iso}$", output, re.M
    )
    assert re.search(
        rf"^revocations:\n  caw +key [0-9a-f]{{16}} revoked at {iso}: left the cell$", output, re.M
    )
    code, output = run("hub", "audit", "export", "--config", config)
    records = [json.loads(line) for line in output.splitlines()]
    assert all(re.fullmatch(iso, r["logged_at"]) for r in records)  # for a person to read
    assert [r["type"] for r in records].count("DirectoryChange") == len(records)
    assert {r["statement_type"] for r in records} == {1, 2, 3}
    code, output = run("hub", "log", "verify", "--config", config)
    assert code == 0, output


def test_status_waits_for_readiness_with_a_deadline(cell: Path) -> None:
    config = cell / "cell" / "hub.toml"
    result = CliRunner().invoke(
        main, ["hub", "status", "--config", str(config), "--wait-ready", "0.3"], env=ENV
    )
    assert result.exit_code == 3
    assert "the hub at http://127.0.0.1:8700 did not answer ready within 0.3 s" in result.output


def test_enrol_refuses_a_wrong_passphrase(cell: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "hub",
            "enrol",
            "--config",
            str(cell / "cell" / "hub.toml"),
            "--bundle",
            str(cell / "keys" / "caw.public.json"),
            "--role",
            "deelnemer",
            "--organisation",
            "0207437468",
        ],
        env={**ENV, "LIVCR_ROOT_PASSPHRASE": "wrong"},
    )
    assert result.exit_code == 1
    assert "passphrase does not open" in result.output


def test_a_broken_config_names_the_bad_key(cell: Path) -> None:
    config = cell / "cell" / "hub.toml"
    config.write_text(config.read_text().replace("port = ", "prot = "))
    code, output = run("hub", "status", "--config", str(config))
    assert code == 1
    assert "unknown field `prot`" in output
    assert "$.hub" in output


def test_serve_refuses_a_log_key_others_can_read(cell: Path) -> None:
    (cell / "cell" / "log.key").chmod(0o644)
    code, output = run("hub", "serve", "--config", str(cell / "cell" / "hub.toml"))
    assert code == 1
    assert "readable by others" in output


def test_default_purposes_cover_the_roles_held_on_a_case() -> None:
    """A deelnemer enrolled without --purpose may be appointed case owner, and then reports."""
    deelnemer = default_purposes(Role.DEELNEMER)
    assert {"opvolgingsrapport", "actieplan", "screening_antwoord"} <= deelnemer
    assert "opvolgingsrapport" not in default_purposes(Role.IO_POLITIE)
    assert "terugkoppelingsfiche" in default_purposes(Role.IO_POLITIE)
