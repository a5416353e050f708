"""Long operator commands show progress on a terminal and nothing elsewhere; `hub purge`."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ptyrun import run_in_pty

from hub.operations import pending_leaf
from hub.operator import CONFIG_NAME, init_cell
from hub.store.base import CaseRecord, NewEnvelope, WriteBatch
from hub.store.sqlite import SQLiteStore
from livcr_cli import main
from livcr_exchange.audit.leaves import EnvelopeAccepted, envelope_hash

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ROOT_PASSPHRASE = "a long root passphrase"  # noqa: S105  (a test's)


def closed_case(case_ref: str, purge_after: int | None) -> WriteBatch:
    message_id = case_ref.encode().ljust(16, b".")
    leaf = EnvelopeAccepted(
        100, bytes(16), message_id, "caw", "aanmelding", case_ref, ("coord",), bytes(32), 6
    )
    envelope = NewEnvelope(
        message_id,
        "caw",
        "aanmelding",
        case_ref,
        ("coord",),
        100,
        10_000,
        6,
        envelope_hash(b"sealed"),
        b"sealed",
    )
    record = CaseRecord(
        case_ref, "afgesloten", None, None, frozenset({"caw", "coord"}), {}, 0, 50, purge_after
    )
    return WriteBatch(envelopes=[envelope], cases=[record], leaves=[pending_leaf(leaf, case_ref)])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A cell whose store holds a case due for purging and one that is not."""
    folder = tmp_path / "cell"
    init_cell(folder, "gent", ROOT_PASSPHRASE.encode(), port=8700, dsn=None)

    async def fill() -> None:
        store = SQLiteStore(folder / "hub.sqlite3")
        await store.open()
        try:
            await store.commit(closed_case("case-old", 500))
            await store.commit(closed_case("case-kept", None))
        finally:
            await store.close()

    asyncio.run(fill())
    return folder / CONFIG_NAME


def livcr_on_a_terminal(*args: str) -> str:
    code, terminal = run_in_pty([sys.executable, "-m", "livcr_cli", *args], timeout=60)
    text = ANSI_ESCAPE.sub("", terminal).replace("\r\n", "\n")
    assert code == 0, text
    return text


def test_progress_on_a_terminal(config: Path) -> None:
    text = livcr_on_a_terminal("hub", "migrate", "--config", str(config))
    assert "migrating the sqlite store" in text
    text = livcr_on_a_terminal("hub", "log", "verify", "--config", str(config))
    assert re.search(r"verifying the log's leaves ━+ 2/2 ", text)
    assert "log verified: 2 leaves" in text
    text = livcr_on_a_terminal("hub", "audit", "export", "--config", str(config))
    assert re.search(r"exporting the log's records ━+ 2/2 ", text)
    assert text.count('"type": "EnvelopeAccepted"') == 2
    text = livcr_on_a_terminal("hub", "purge", "--config", str(config))
    assert re.search(r"purging \(rows removed\) .* 2/\? ", text)
    assert "purged 1 case(s): 2 rows deleted; the log still verifies" in text


def test_quiet_elsewhere_and_purge_dry_run(config: Path) -> None:
    runner = CliRunner()
    for args in (("log", "verify"), ("audit", "export"), ("migrate",)):
        result = runner.invoke(main, ["hub", *args, "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert "━" not in result.output
        assert "verifying" not in result.output
    result = runner.invoke(main, ["hub", "purge", "--dry-run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "  case-old: retention over since 1970-01-01T00:08:20Z\n"
        "would purge 1 case(s); nothing deleted (--dry-run)\n"
    )
    result = runner.invoke(main, ["hub", "purge", "--config", str(config)])
    assert result.output.endswith("purged 1 case(s): 2 rows deleted; the log still verifies\n")
    result = runner.invoke(main, ["hub", "log", "verify", "--config", str(config)])
    assert "log verified: 2 leaves (1 retained by hash only)" in result.output
    result = runner.invoke(main, ["hub", "purge", "--config", str(config)])
    assert result.output == "purged 0 case(s): 0 rows deleted; the log still verifies\n"
