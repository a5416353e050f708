"""`livcr hub init` makes a console operator; `operator add|remove`; `deliveries list|drop`."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from click.testing import CliRunner

from hub.config import load_config
from hub.console.operators import check_password, read_operators
from hub.operations import pending_leaf
from hub.operator import opened
from hub.store.base import NewEnvelope, WriteBatch
from livcr_cli import main
from livcr_exchange.audit.leaves import (
    DeliveryDropped,
    EnvelopeAccepted,
    decode_leaf,
    envelope_hash,
)

ENV = {"LIVCR_ROOT_PASSPHRASE": "a root passphrase", "LIVCR_OPERATOR_PASSWORD": "first operator pw"}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env or ENV)
    return result.exit_code, result.output


def test_init_creates_the_console_and_its_first_operator(tmp_path: Path) -> None:
    code, output = run("hub", "init", str(tmp_path / "c"), "--cell-id", "gent", "--port", "9000")
    assert code == 0, output
    config = load_config(tmp_path / "c" / "hub.toml")
    assert config.console is not None
    assert (config.console.host, config.console.port) == ("127.0.0.1", 9100)
    path = tmp_path / "c" / "operators.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    operators = read_operators(path)
    assert check_password(operators, "admin", "first operator pw")
    assert not check_password(operators, "admin", "another password")
    assert b"first operator pw" not in path.read_bytes()
    # Without the variable, a random password is shown once.
    code, output = run(
        "hub",
        "init",
        str(tmp_path / "d"),
        "--cell-id",
        "gent",
        env={"LIVCR_ROOT_PASSPHRASE": "another root passphrase"},
    )
    assert code == 0, output
    assert "(shown once)" in output


def test_operator_add_and_remove(tmp_path: Path) -> None:
    assert run("hub", "init", str(tmp_path / "c"), "--cell-id", "gent")[0] == 0
    config = str(tmp_path / "c" / "hub.toml")
    env = {"LIVCR_OPERATOR_PASSWORD": "second operator pw"}
    assert run("hub", "operator", "add", "--config", config, "oncall", env=env)[0] == 0
    assert set(read_operators(tmp_path / "c" / "operators.json")) == {"admin", "oncall"}
    code, output = run("hub", "operator", "add", "--config", config, "Not A Name", env=env)
    assert code == 1
    assert "operator name" in output
    short = {"LIVCR_OPERATOR_PASSWORD": "short"}
    assert run("hub", "operator", "add", "--config", config, "x", env=short)[0] == 1
    assert run("hub", "operator", "remove", "--config", config, "oncall")[0] == 0
    assert set(read_operators(tmp_path / "c" / "operators.json")) == {"admin"}
    assert run("hub", "operator", "remove", "--config", config, "oncall")[0] == 1


def test_deliveries_list_and_drop(tmp_path: Path) -> None:
    assert run("hub", "init", str(tmp_path / "c"), "--cell-id", "gent")[0] == 0
    config_path = tmp_path / "c" / "hub.toml"

    async def queue_one() -> None:
        async with opened(load_config(config_path)) as store:
            message_id = bytes(range(16))
            leaf = EnvelopeAccepted(
                1, bytes(16), message_id, "caw", "aanmelding", "case-a", ("coord",), bytes(32), 7
            )
            envelope = NewEnvelope(
                message_id,
                "caw",
                "aanmelding",
                "case-a",
                ("coord",),
                1,
                10**10,
                7,
                envelope_hash(b"sealed!"),
                b"sealed!",
            )
            await store.commit(
                WriteBatch(envelopes=[envelope], leaves=[pending_leaf(leaf, "case-a")])
            )

    asyncio.run(queue_one())
    code, output = run("hub", "deliveries", "list", "--config", str(config_path), "coord")
    assert code == 0, output
    row = output.splitlines()[1].split()
    assert (row[0], row[-1]) == ("1", "7")  # delivery number 1, 7 bytes
    assert bytes(range(16)).hex() not in output  # no message id
    drop = ("hub", "deliveries", "drop", "--config", str(config_path), "coord", "1")
    code, output = run(*drop, "--reason", "because")
    assert code == 2  # not a listed reason
    code, output = run(*drop, "--reason", "too_old")
    assert code == 0, output
    assert "log leaf 1" in output
    code, output = run(*drop, "--reason", "too_old")
    assert code == 1
    assert "no delivery 1" in output

    async def last_leaf() -> bytes | None:
        async with opened(load_config(config_path)) as store:
            return (await store.leaves(1, 2))[0][2]

    data = asyncio.run(last_leaf())
    assert data is not None
    assert isinstance(decode_leaf(data), DeliveryDropped)
    assert json.loads((tmp_path / "c" / "operators.json").read_text())["operators"]
