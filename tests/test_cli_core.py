"""`livcr keys new`, `livcr inspect` through the real command."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from livcr_cli import main
from livcr_exchange.keyfile import unlock
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.statements import PrekeyStatement

VECTORS = Path(__file__).resolve().parent.parent / "specs" / "vectors" / "envelope.json"


@pytest.fixture(autouse=True)
def cheap_keyfiles(monkeypatch: pytest.MonkeyPatch) -> None:
    # Argon2id at full cost takes ~1 s and 256 MiB; the file records its cost, so tests may
    # use the minimum without changing the format.
    monkeypatch.setattr("livcr_exchange.keyfile.SECRET_KEY_OPSLIMIT", 1)
    monkeypatch.setattr("livcr_exchange.service.cli.lock", _cheap_lock)


def _cheap_lock(bundle, passphrase, random):  # type: ignore[no-untyped-def]
    from livcr_exchange.keyfile import lock  # noqa: PLC0415

    return lock(bundle, passphrase, random, opslimit=1, memlimit=8192)


def test_keys_new_writes_a_private_secret_and_a_signed_public_bundle(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["keys", "new", "caw", "--out", str(tmp_path), "--prekeys", "2"],
        env={"LIVCR_PASSPHRASE": "s3cret"},
    )
    assert result.exit_code == 0, result.output
    secret = tmp_path / "caw.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    bundle = unlock(secret.read_bytes(), b"s3cret")
    public = json.loads((tmp_path / "caw.public.json").read_text())
    identity = IdentityPublicKey.from_text(public["identity_key"])
    assert identity == bundle.identity.public
    statements = [PrekeyStatement.open(base64.b64decode(s), identity) for s in public["prekeys"]]
    assert [s.prekey_id for s in statements] == [p.key_id for p in bundle.prekeys]
    assert statements[0].not_after == statements[1].not_before
    assert b"s3cret" not in secret.read_bytes()


def test_keys_new_refuses_to_overwrite(tmp_path: Path) -> None:
    args = ["keys", "new", "caw", "--out", str(tmp_path)]
    env = {"LIVCR_PASSPHRASE": "x"}
    assert CliRunner().invoke(main, args, env=env).exit_code == 0
    again = CliRunner().invoke(main, args, env=env)
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.output


def test_keys_new_rejects_a_bad_participant_id(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["keys", "new", "Bad Id", "--out", str(tmp_path)], env={"LIVCR_PASSPHRASE": "x"}
    )
    assert result.exit_code == 2
    assert "not 1-64 of [a-z0-9._-]" in result.output


def _first_ok_vector() -> dict:  # type: ignore[type-arg]
    listing = json.loads(VECTORS.read_text())
    return next(v for v in listing["vectors"] if v["name"] == "envelope_ok_xwing_3_recipients")


def test_inspect_shows_only_metadata(tmp_path: Path) -> None:
    vector = _first_ok_vector()
    envelope = tmp_path / "message.lvcr"
    envelope.write_bytes(base64.b64decode(vector["envelope"]))
    result = CliRunner().invoke(main, ["inspect", str(envelope)])
    assert result.exit_code == 0, result.output
    assert "screening_vraag" in result.output
    assert "caw, clb, io-politie" in result.output
    assert "known?" not in result.output
    assert "not checked" in result.output


def test_inspect_verifies_with_a_directory(tmp_path: Path) -> None:
    vector = _first_ok_vector()
    envelope = tmp_path / "message.lvcr"
    envelope.write_bytes(base64.b64decode(vector["envelope"]))
    directory = tmp_path / "directory.json"
    directory.write_text(json.dumps(vector["cell"]))
    ok = CliRunner().invoke(
        main,
        [
            "inspect",
            str(envelope),
            "--directory",
            str(directory),
            "--at",
            str(vector["judged_at"]),
            "--now",
            str(vector["now"]),
        ],
    )
    assert "signature: valid" in ok.output, ok.output
    tampered = bytearray(envelope.read_bytes())
    tampered[-1] ^= 1
    envelope.write_bytes(bytes(tampered))
    bad = CliRunner().invoke(
        main,
        [
            "inspect",
            str(envelope),
            "--directory",
            str(directory),
            "--at",
            str(vector["judged_at"]),
            "--now",
            str(vector["now"]),
        ],
    )
    assert bad.exit_code == 1
    assert "bad_signature" in bad.output


def test_inspect_names_the_code_of_a_malformed_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x00\x00\x05LVCR")
    result = CliRunner().invoke(main, ["inspect", str(junk)])
    assert result.exit_code == 1
    assert "malformed" in result.output
