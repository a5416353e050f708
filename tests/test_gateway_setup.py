"""`init_gateway`: every input checked before anything is written; a refused or failed init
leaves the folder as it found it (no half-made gateway, above all no gateway.toml)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load_config
from gateway.setup import init_gateway
from livcr_exchange.keys import IdentityKey

CHEAP_KEYS = (1, 8192)
ROOT = Path(__file__).resolve().parent.parent


def public_key() -> str:
    return IdentityKey.from_seed(os.urandom(32)).public.to_text()


def arguments(**changes: Any) -> dict[str, Any]:
    return {
        "participant_id": "caw",
        "cell_id": "gent",
        "root_key": public_key(),
        "hub_url": "http://127.0.0.1:8700",
        "hub_log_key": public_key(),
        "passphrase": b"a passphrase",
        "now": int(time.time()),
        "key_cost": CHEAP_KEYS,
        **changes,
    }


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_init_makes_a_complete_gateway(tmp_path: Path) -> None:
    folder = tmp_path / "gw"
    bundle = init_gateway(folder, **arguments())
    assert bundle == folder / "caw.public.json"
    assert files(folder) == [
        "api.token",
        "caw.public.json",
        "gateway.sqlite3",
        "gateway.toml",
        "identity.secret",
        "local.key",
    ]
    assert load_config(folder / "gateway.toml").participant_id == "caw"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"participant_id": "CAW Gent"}, ConfigError),
        ({"cell_id": "-gent"}, ConfigError),
        ({"root_key": "livcr-ed25519:nope"}, ConfigError),
        ({"hub_log_key": "not a key"}, ConfigError),
        ({"hub_url": "ftp://hub"}, ConfigError),
        ({"hub_url": "http://"}, ConfigError),
        ({"hub_url": "http://hub:99999"}, ConfigError),
        # A value that would end its TOML string and add a key of its own.
        ({"hub_url": 'http://hub"\nkey_file = "/tmp/elsewhere'}, ConfigError),
        ({"cell_id": 'gent"\n[api]\nport = 1'}, ConfigError),
        ({"api_port": 70000}, ConfigError),
        ({"passphrase": b""}, ValueError),
        ({"key_cost": (0, 8192)}, ValueError),
        ({"now": 0}, ValueError),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else value.__name__,
)
def test_bad_input_writes_nothing(
    tmp_path: Path, changes: dict[str, Any], error: type[Exception]
) -> None:
    folder = tmp_path / "new" / "gw"
    with pytest.raises(error):
        init_gateway(folder, **arguments(**changes))
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("the operator's own file\n")
    with pytest.raises(error):
        init_gateway(existing, **arguments(**changes))
    assert files(existing) == ["notes.txt"]


@pytest.mark.parametrize(
    "leftover", ["gateway.toml", "identity.secret", "api.token", "gateway.sqlite3-wal"]
)
def test_a_folder_holding_part_of_a_gateway_is_left_alone(tmp_path: Path, leftover: str) -> None:
    """What an interrupted init or another gateway left: refused before anything is written."""
    folder = tmp_path / "gw"
    folder.mkdir()
    (folder / leftover).write_bytes(b"not ours to touch")
    with pytest.raises(FileExistsError) as refused:
        init_gateway(folder, **arguments())
    assert refused.value.args[0] == folder / leftover
    assert files(folder) == [leftover]
    assert (folder / leftover).read_bytes() == b"not ours to touch"


def test_a_write_that_fails_midway_leaves_nothing(tmp_path: Path) -> None:
    """A real write failure after the key files are written: the process may write files of at
    most 2 KiB (RLIMIT_FSIZE, as a full disk would), so the store cannot be created. What was
    written is removed, the folder too; there is no gateway.toml."""
    folder = tmp_path / "new" / "gw"
    script = textwrap.dedent(
        f"""
        import resource, signal, sys, time
        from pathlib import Path
        from gateway.setup import init_gateway
        from livcr_exchange.keys import IdentityKey

        key = IdentityKey.from_seed(bytes(32)).public.to_text()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
        try:
            init_gateway(
                Path({str(folder)!r}), participant_id="caw", cell_id="gent", root_key=key,
                hub_url="http://127.0.0.1:8700", hub_log_key=key, passphrase=b"x",
                now=int(time.time()), key_cost={CHEAP_KEYS!r},
            )
        except OSError as exc:
            print("refused:", type(exc).__name__, exc)
            sys.exit(3)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "gateway.sqlite3" in result.stdout
    assert not (tmp_path / "new").exists()
