"""`livcr audit verify` and `livcr audit aggregate` through the real command."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner
from factories import det_bytes, kbo
from test_oversight_report import AUDITOR, build

from livcr_cli import main
from livcr_exchange.keyfile import SecretBundle, lock
from livcr_exchange.keys import IdentityKey
from livcr_exchange.oversight import sign_report, verify_report

PASSPHRASE = "regional passphrase"  # noqa: S105  (a test fixture)
REGIONAL = IdentityKey.from_seed(det_bytes("regional auditor", 32))


def signed_report(folder: Path) -> Path:
    folder.mkdir()
    data, signature = sign_report(build(), AUDITOR)
    (folder / "report.json").write_bytes(data)
    (folder / "report.json.sig").write_bytes(signature)
    return folder / "report.json"


def test_verify_accepts_a_trusted_auditor_only(tmp_path: Path) -> None:
    report = signed_report(tmp_path / "cell")
    trusted = CliRunner().invoke(
        main, ["audit", "verify", str(report), "--key", AUDITOR.public.to_text()]
    )
    assert trusted.exit_code == 0, trusted.output
    assert "report verified: cell cell-audit" in trusted.output
    other = CliRunner().invoke(
        main, ["audit", "verify", str(report), "--key", REGIONAL.public.to_text()]
    )
    assert other.exit_code != 0
    assert "unknown_sender" in other.output
    report.write_bytes(report.read_bytes().replace(b'"total":11', b'"total":12'))
    changed = CliRunner().invoke(
        main, ["audit", "verify", str(report), "--key", AUDITOR.public.to_text()]
    )
    assert changed.exit_code != 0
    assert "bad_signature" in changed.output


def test_aggregate_verifies_each_cell_and_signs_the_region(tmp_path: Path) -> None:
    reports = [signed_report(tmp_path / name) for name in ("north", "south")]
    key_file = tmp_path / "regional.secret"
    bundle = SecretBundle("vlaanderen-toezicht", REGIONAL)
    key_file.write_bytes(lock(bundle, PASSPHRASE.encode(), os.urandom, opslimit=1, memlimit=8192))
    out = tmp_path / "region"
    args = ["audit", "aggregate", *map(str, reports), "--trust", AUDITOR.public.to_text()]
    args += ["--key", str(key_file), "--organisation", kbo(3_000_001), "--out-dir", str(out)]
    result = CliRunner().invoke(main, args, env={"LIVCR_PASSPHRASE": PASSPHRASE})
    assert result.exit_code == 0, result.output
    region = verify_report(
        (out / "report.json").read_bytes(),
        (out / "report.json.sig").read_bytes(),
        {REGIONAL.public},
    )
    assert region.scope == "region"
    assert len(region.logs) == 2
    assert "<svg" in (out / "report.html").read_text()
    untrusted = CliRunner().invoke(
        main,
        [*args[:4], "--trust", REGIONAL.public.to_text(), *args[6:]],
        env={"LIVCR_PASSPHRASE": PASSPHRASE},
    )
    assert untrusted.exit_code != 0
    assert "unknown_sender" in untrusted.output
