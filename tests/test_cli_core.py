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
    assert "timestamp: 2030-01-01T00:00:00Z" in result.output  # ISO 8601, not Unix seconds
    assert "  not run  sender key, signature, time (§6.6 steps 5-8): needs --directory" in (
        result.output
    )
    assert (
        "  not run  stanza, unwrap, commitment, body (§6.6 steps 10-14): cannot decrypt without"
        " the recipient's prekey secret" in result.output
    )


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
    assert (
        "  ran      sender key, signature, time (§6.6 steps 5-8): ok: the directory vouches for"
        " the sender's key; the signature verifies" in ok.output
    ), ok.output
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


def test_inspect_reads_stdin_and_base64_and_answers_json() -> None:
    vector = _first_ok_vector()
    text = vector["envelope"]
    raw = base64.b64decode(text)
    from_stdin = CliRunner().invoke(main, ["inspect", "-", "--json"], input=raw)
    assert from_stdin.exit_code == 0, from_stdin.output
    report = json.loads(from_stdin.output)
    assert report["header"]["recipients"] == ["caw", "clb", "io-politie"]
    assert report["passed"] is True
    assert [c["ran"] for c in report["checks"]] == [True, False, False, False, False]
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + "\n"
    decoded = CliRunner().invoke(main, ["inspect", "--base64", "--json"], input=wrapped)
    assert json.loads(decoded.output) == report
    # Base64 given as if it were bytes: said so, not "a header of 1094795586 bytes".
    mistaken = CliRunner().invoke(main, ["inspect"], input=wrapped)
    assert mistaken.exit_code == 1
    assert mistaken.output == (
        "Error: the input is base64 text, not an envelope's bytes: add --base64\n"
    )


def test_a_malformed_directory_file_is_one_line(tmp_path: Path) -> None:
    envelope = tmp_path / "message.lvcr"
    envelope.write_bytes(base64.b64decode(_first_ok_vector()["envelope"]))
    directory = tmp_path / "directory.json"
    for content, expected in (
        (
            '{"cell_id": 3}',
            (
                "not a cell directory (cell_id, root_key, entries, revocations): Expected `str`,"
                " got `int` - at `$.cell_id`"
            ),
        ),
        ("[1]", "not a cell directory (cell_id, root_key, entries, revocations): Expected `obj"),
        (
            '{"cell_id": "c", "root_key": "x", "entries": []}',
            "the directory does not verify: ",
        ),
    ):
        directory.write_text(content)
        result = CliRunner().invoke(main, ["inspect", str(envelope), "--directory", str(directory)])
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: {directory}: {expected}"), result.output
        assert result.output.count("\n") == 1
        assert "Traceback" not in result.output


def test_vectors_extract_writes_an_envelope_and_its_directory(tmp_path: Path) -> None:
    name = "envelope_ok_xwing_3_recipients"
    result = CliRunner().invoke(
        main,
        [
            *("vectors", "extract", name, "--from", str(VECTORS.parent)),
            *("--out", str(tmp_path / "e.bin"), "--directory", str(tmp_path / "cell.json")),
        ],
    )
    assert result.exit_code == 0, result.output
    vector = _first_ok_vector()
    assert (tmp_path / "e.bin").read_bytes() == base64.b64decode(vector["envelope"])
    assert json.loads((tmp_path / "cell.json").read_text()) == {"revocations": [], **vector["cell"]}
    checked = CliRunner().invoke(
        main,
        [
            *("inspect", str(tmp_path / "e.bin"), "--directory", str(tmp_path / "cell.json")),
            *("--now", str(vector["now"]), "--at", str(vector["judged_at"])),
        ],
    )
    assert checked.exit_code == 0, checked.output
    refused = CliRunner().invoke(
        main,
        ["vectors", "extract", "checkpoint_ok", "--from", str(VECTORS.parent), "--out", "x"],
    )
    assert refused.exit_code == 1
    assert refused.output == (
        "Error: checkpoint_ok is a checkpoint vector: only envelope vectors carry an envelope\n"
    )
