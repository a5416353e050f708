"""The published vectors: each one its own test, regeneration is byte-stable, codes all covered."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from livcr_cli import main
from livcr_exchange.conformance import Vector, decode_vector_file, run_vector, vector_file_names
from livcr_exchange.errors import Malformed, error_codes
from livcr_exchange.service.vectors import load_all_vectors, load_vector_dir

ROOT = Path(__file__).resolve().parent.parent
VECTOR_DIR = ROOT / "specs" / "vectors"
SPEC = ROOT / "specs" / "livcr-exchange.md"
ALL_VECTORS = load_vector_dir(VECTOR_DIR)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=[v.name for v in ALL_VECTORS])
def test_vector(vector: Vector) -> None:
    outcome = run_vector(vector)
    assert outcome.actual == outcome.expected, outcome.detail


def test_names_are_unique_and_follow_area_defect() -> None:
    names = [v.name for v in ALL_VECTORS]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", n) for n in names)


def test_every_error_code_has_a_negative_vector() -> None:
    expected = {v.expect for v in ALL_VECTORS}
    assert set(error_codes()) - expected == set()


def test_every_error_code_is_in_the_spec_table() -> None:
    text = SPEC.read_text()
    section = text[text.index("## 13. Error codes") : text.index("## 14.")]
    table = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert table == set(error_codes())


def test_loading_is_strict() -> None:
    good = (VECTOR_DIR / "keyfile.json").read_bytes()
    with pytest.raises(Malformed):
        decode_vector_file(good.replace(b'"passphrase"', b'"passphrase_typo"', 1))
    with pytest.raises(Malformed):
        decode_vector_file(good.replace(b'"secret_key_file"', b'"unknown_kind"', 1))


def test_regenerating_changes_no_byte(tmp_path: Path) -> None:
    """Into an empty folder, as the README says: the published stanza pins are reused."""
    pins = VECTOR_DIR / "envelope-stanzas.json"
    subprocess.run(
        [sys.executable, str(ROOT / "specs" / "generate_vectors.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    published = [*vector_file_names(p.name for p in VECTOR_DIR.iterdir()), pins.name]
    for name in published:
        assert (tmp_path / name).read_bytes() == (VECTOR_DIR / name).read_bytes(), name


def test_cli_verifies_every_vector() -> None:
    result = CliRunner().invoke(main, ["vectors", "verify", str(VECTOR_DIR)])
    assert result.exit_code == 0, result.output
    total = len(load_all_vectors(VECTOR_DIR))  # external/ included (spec §14.2)
    assert total > len(ALL_VECTORS)
    assert result.output.strip().splitlines() == [f"{total} passed, 0 failed"]


def test_cli_reports_a_failing_vector(tmp_path: Path) -> None:
    data = (VECTOR_DIR / "keyfile.json").read_bytes()
    (tmp_path / "keyfile.json").write_bytes(
        data.replace(b'"expect": "wrong_passphrase"', b'"expect": "ok"', 1)
    )
    result = CliRunner().invoke(main, ["vectors", "verify", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL secret_key_file_wrong_passphrase" in result.output
    count = len(decode_vector_file(data))
    assert result.output.strip().splitlines()[-1] == f"{count - 1} passed, 1 failed"
