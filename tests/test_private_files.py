"""The one writer of a service's files: 0600 from the first byte, never a wider mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from livcr_exchange.service.files import open_private, replace_private, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_secret_is_never_written_over_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_private(path, b"first")
    with pytest.raises(FileExistsError):
        write_private(path, b"second")
    assert (path.read_bytes(), mode(path)) == (b"first", 0o600)


def test_a_replaced_file_is_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "operators.json"
    path.write_text("old")
    path.chmod(0o644)
    (tmp_path / "operators.json.tmp").write_text("a leftover of a crash")
    replace_private(path, b"new")
    assert (path.read_bytes(), mode(path)) == (b"new", 0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["operators.json"]


def test_an_export_over_a_readable_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text("an older, longer export")
    path.chmod(0o644)
    with open_private(path) as handle:
        handle.write("new")
    assert (path.read_text(), mode(path)) == ("new", 0o600)
