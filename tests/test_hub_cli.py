"""The operator's commands through the real `livcr` entry point."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import StoreTarget

from hub import operator
from hub.config import load_config
from hub.operator import default_purposes
from livcr_cli import main
from livcr_exchange.roles import Role

ENV = {"LIVCR_ROOT_PASSPHRASE": "root passphrase", "LIVCR_PASSPHRASE": "participant pw"}


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={**ENV, **(env or {})})
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
    if store_target.kind == "postgresql":
        text, count = re.subn(
            r"^\[store\]\n.*?\n\n",
            store_target.toml() + "\n",
            config.read_text(),
            flags=re.M | re.S,
        )
        assert count == 1
        config.write_text(text)
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


def test_status_names_the_last_checkpoint_and_when_its_last_leaf_was_logged(
    cell: Path, cell_config: str
) -> None:
    code, output = run(*enrol_args(cell_config, cell / "keys", "caw", "deelnemer"))
    assert code == 0, output

    async def sign_one() -> int:
        async with operator.opened(load_config(Path(cell_config))) as store:
            size = await store.tree_size()
            await store.save_checkpoint(size, b"a note the status does not read\n")
            return size

    size = asyncio.run(sign_one())
    code, output = run("hub", "status", "--config", cell_config)
    assert code == 0, output
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.search(rf"^log size {size}, last checkpoint at size {size} \({iso}\);", output, re.M)


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


@pytest.mark.parametrize(
    ("budgets", "named"),
    [
        ("body_memory_budget_bytes = 4096", "hub.body_memory_budget_bytes must be at least twice"),
        ("streamed_body_budget_bytes = 1024", "hub.streamed_body_budget_bytes must be at least"),
    ],
)
def test_a_budget_too_small_for_the_largest_body_is_refused(
    cell: Path, budgets: str, named: str
) -> None:
    config = cell / "cell" / "hub.toml"
    config.write_text(config.read_text().replace("[store]", budgets + "\n[store]", 1))
    code, output = run("hub", "config", "check", "--config", str(config))
    assert code == 1
    assert named in output


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


def enrol_args(config: str, keys: Path, participant: str, role: str, *more: str) -> list[str]:
    bundle = str(keys / f"{participant}.public.json")
    return [
        *("hub", "enrol", "--config", config, "--bundle", bundle, "--role", role),
        *("--organisation", "0207437468", *more),
    ]


def test_enrolment_changes_only_what_the_operator_asks_for(cell: Path, cell_config: str) -> None:
    keys = cell / "keys"
    code, output = run(*enrol_args(cell_config, keys, "caw", "deelnemer", "--purposes", "foo,bar"))
    assert code == 1
    assert "Error: unknown purposes: bar, foo (`livcr purposes list` names them all)" in output
    code, output = run(*enrol_args(cell_config, keys, "caw", "deelnemer"))
    assert code == 0, output

    code, output = run(*enrol_args(cell_config, keys, "caw", "coordinator"))
    assert code == 1
    assert (
        "Error: caw is enrolled already (deelnemer, 0207437468); say --replace to replace its"
        " entry, which changes:\n  role: deelnemer -> coordinator\n" in output
    )
    assert "\n  purposes: +rechtenverzoek +terugkoppelingsfiche\n" in output
    code, output = run(*enrol_args(cell_config, keys, "caw", "coordinator", "--replace"))
    assert code == 0, output
    assert output.startswith("  role: deelnemer -> coordinator\n")
    assert "\n  purposes: +rechtenverzoek +terugkoppelingsfiche\n" in output
    assert "enrolled caw as coordinator" in output

    code, output = run("hub", "revoke", "--config", cell_config, "caw", "--reason", "left")
    assert (code, output) == (0, "revoked 1 key(s) of caw\n")
    code, output = run("hub", "revoke", "--config", cell_config, "caw", "--reason", "again")
    assert code == 0
    assert re.fullmatch(r"caw was revoked already at \S+Z \(left\); nothing changed\n", output)

    code, output = run(*enrol_args(cell_config, keys, "caw", "deelnemer", "--reenrol"))
    assert code == 1
    assert "Error: the key of caw was revoked at " in output
    assert "(left) and stays revoked: enrol a new key (`livcr keys new`)" in output
    code, output = run("keys", "new", "caw", "--out", str(cell / "new"))
    assert code == 0, output
    code, output = run(*enrol_args(cell_config, cell / "new", "caw", "deelnemer"))
    assert code == 1
    assert re.search(r"Error: caw was revoked at \S+Z \(left\); say --reenrol to enrol", output)
    code, output = run(*enrol_args(cell_config, cell / "new", "caw", "deelnemer", "--reenrol"))
    assert code == 0, output
    assert "enrolled caw as deelnemer" in output


def test_init_refuses_a_short_root_passphrase(tmp_path: Path) -> None:
    code, output = run(
        "hub",
        "init",
        str(tmp_path / "c"),
        "--cell-id",
        "gent",
        env={"LIVCR_ROOT_PASSPHRASE": "short"},
    )
    assert code == 1
    assert "Error: the root key passphrase must be at least 12 characters" in output
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("variable", "args"),
    [
        ("LIVCR_ROOT_PASSPHRASE", ("hub", "init", "{tmp}/c", "--cell-id", "gent")),
        ("LIVCR_ROOT_PASSPHRASE", ("hub", "revoke", "--config", "{cell}", "caw")),
        ("LIVCR_ROOT_PASSPHRASE", ("hub", "witness", "quorum", "--config", "{cell}", "0")),
        ("LIVCR_PASSPHRASE", ("keys", "new", "caw", "--out", "{tmp}/k")),
        ("LIVCR_OPERATOR_PASSWORD", ("hub", "operator", "add", "--config", "{cell}", "anna")),
    ],
)
def test_without_a_terminal_a_missing_passphrase_names_its_variable(
    cell: Path, tmp_path: Path, variable: str, args: tuple[str, ...]
) -> None:
    filled = [a.format(tmp=tmp_path, cell=cell / "cell" / "hub.toml") for a in args]
    code, output = run(*filled, env={variable: None})
    assert code == 1
    assert "(there is no terminal to ask on)" in output
    assert f"set {variable} " in output
    assert "Aborted" not in output


def test_config_from_the_environment_and_of_the_wrong_kind(cell: Path, tmp_path: Path) -> None:
    config = cell / "cell" / "hub.toml"
    code, output = run("hub", "config", "check", env={"LIVCR_CONFIG": str(config)})
    assert code == 0, output
    assert output.startswith(f"{config}: valid\n  cell gent, serving http://127.0.0.1:8700\n")
    gateway_toml = tmp_path / "gateway.toml"
    gateway_toml.write_text('[gateway]\nparticipant_id = "caw"\n')
    code, output = run("hub", "status", "--config", str(gateway_toml))
    assert code == 1
    assert (
        f"Error: {gateway_toml}: this is a gateway's configuration (it has a [gateway] section);"
        " hub commands take the hub's hub.toml (made by `livcr hub init`)"
    ) in output
    code, output = run("gateway", "status", "--config", str(config))
    assert code == 1
    assert f"Error: {config}: this is a hub's configuration (it has a [hub] section)" in output


def every_command(group: click.Group, path: str = "livcr") -> Iterator[tuple[str, click.Command]]:
    """Every command under ``group``, found as click finds them (lazy groups included)."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from every_command(command, f"{path} {name}")


def test_every_config_option_also_reads_livcr_config() -> None:
    options = {
        where: option
        for where, command in every_command(main)
        for option in command.params
        if option.name == "config_path"
    }
    assert len(options) > 30  # hub, console, witness, gateway and case commands alike
    assert {where: o.envvar for where, o in options.items() if o.envvar != "LIVCR_CONFIG"} == {}


def test_a_bad_hub_key_is_named(cell: Path) -> None:
    config = cell / "cell" / "hub.toml"
    text = config.read_text()
    config.write_text(re.sub(r'root_key = "[^"]*"', 'root_key = "livcr-ed25519:AAAA"', text))
    code, output = run("hub", "config", "check", "--config", str(config))
    assert code == 1
    assert output.rstrip().endswith("- at `$.hub.root_key`"), output


def test_init_writes_each_keys_meaning_above_it(cell: Path) -> None:
    text = (cell / "cell" / "hub.toml").read_text()
    assert text.startswith(
        "# livcr hub configuration; every key and its default: docs/configuration.md\n"
    )
    meaning = "# Days after a case's closure before its envelopes and leaf data go.\n"
    assert meaning + "retention_days = 365\n" in text
    keys = [line for line in text.splitlines() if " = " in line and not line.startswith("#")]
    comments = [line for line in text.splitlines() if line.startswith("# ")]
    assert len(comments) == len(keys) + 1


def test_an_audit_export_over_an_existing_file_is_made_private(cell: Path) -> None:
    out = cell / "audit.jsonl"
    out.write_text("older export\n")
    out.chmod(0o644)
    code, output = run("hub", "audit", "export", "--config", str(cell / "cell" / "hub.toml"))
    assert code == 0, output
    code, output = run(
        "hub", "audit", "export", "--config", str(cell / "cell" / "hub.toml"), "--out", str(out)
    )
    assert code == 0, output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # who sent what to whom: personal data
    assert "older export" not in out.read_text()
