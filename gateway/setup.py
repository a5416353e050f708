"""Creating a gateway: keys, local key, API token, config and the public bundle for the hub.

``init_gateway`` checks every input and makes every file's content before it writes anything;
it then writes the files, the configuration last (complete or not at all), and removes what it
wrote if a write fails. A folder with a ``gateway.toml`` is therefore a complete gateway, and a
refused or failed ``init`` leaves the folder as it found it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from livcr_exchange.constants import SECRET_KEY_MEMLIMIT, SECRET_KEY_OPSLIMIT
from livcr_exchange.keyfile import SecretBundle, lock
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite
from livcr_exchange.service.files import write_private
from livcr_exchange.statements import PrekeyStatement

from .config import GatewayConfig, parse_config
from .localbox import KEY_BYTES, LocalBox
from .store import GatewayStore

CONFIG_NAME = "gateway.toml"
DAY = 86_400
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")  # a stale one would be read as ours


@dataclass(frozen=True)
class FirstPrekey:
    """One of the two prekeys a new gateway starts with: its row in the store and its statement."""

    prekey_id: bytes
    sealed_secret: bytes = field(repr=False)
    statement: bytes
    not_before: int
    not_after: int


def init_gateway(
    directory: Path,
    *,
    participant_id: str,
    cell_id: str,
    root_key: str,
    hub_url: str,
    hub_log_key: str,
    passphrase: bytes,
    now: int,
    suite: Suite = Suite.XWING,
    api_port: int = 8800,
    key_cost: tuple[int, int] = (SECRET_KEY_OPSLIMIT, SECRET_KEY_MEMLIMIT),
    hub_origin: str = "",
) -> Path:
    """Create a gateway folder; return the path of the public bundle to hand to the hub operator.

    Nothing is written before every input has been checked; if writing fails, what was written
    is removed again (the folder too, if this call made it).

    Raises:
        ConfigError: a bad identifier, key, URL or port (named as in gateway.toml).
        ValueError: an empty passphrase, or a key-file cost outside the bounds of spec §5.7.
        FileExistsError: the folder already holds a gateway, or a file one would write.
        OSError: a file could not be written; nothing was left behind.
    """
    config_path = directory / CONFIG_NAME
    text = config_text(
        participant_id, cell_id, root_key, hub_url, hub_log_key, suite, api_port, hub_origin
    )
    config = parse_config(text, directory.resolve(), str(config_path))
    _check_inputs(passphrase, now)
    bundle_path = directory / f"{participant_id}.public.json"
    targets = _free_targets(config, config_path, bundle_path)
    key_file, local_key, prekeys, bundle = _contents(config, passphrase, now, key_cost)
    created = _missing_folders(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_private(config.path(config.gateway.key_file), key_file)
        write_private(config.path(config.gateway.local_key_file), local_key)
        write_private(config.path(config.api.token_file), secrets.token_urlsafe(32).encode())
        asyncio.run(_store_prekeys(config, prekeys))
        _write_new(bundle_path, (json.dumps(bundle, indent=2) + "\n").encode("utf-8"))
        _write_new(config_path, text.encode("utf-8"))
    except BaseException:
        _remove(targets, created)
        raise
    return bundle_path


def _free_targets(config: GatewayConfig, config_path: Path, bundle_path: Path) -> list[Path]:
    """The files ``init_gateway`` writes. Raises FileExistsError: one exists already."""
    targets = _targets(config, config_path, bundle_path)
    for path in targets:
        if os.path.lexists(path):
            raise FileExistsError(path)
    return targets


def _check_inputs(passphrase: bytes, now: int) -> None:
    """Raises ValueError for an empty passphrase or a ``now`` that is no time."""
    if not passphrase:
        raise ValueError("the key file passphrase may not be empty")
    if now <= DAY:
        raise ValueError(f"now={now} is not a time (Unix seconds)")


def _contents(
    config: GatewayConfig, passphrase: bytes, now: int, key_cost: tuple[int, int]
) -> tuple[bytes, bytes, list[FirstPrekey], dict[str, object]]:
    """Every new file's content, made in memory: the key file, the local key, the first
    prekeys and the public bundle.

    Raises:
        ValueError: a key-file cost outside the bounds of spec §5.7.
    """
    participant_id = config.participant_id
    identity = IdentityKey.from_seed(os.urandom(32))
    opslimit, memlimit = key_cost
    key_file = lock(  # ValueError for a cost outside the bounds of spec §5.7
        SecretBundle(participant_id, identity),
        passphrase,
        os.urandom,
        opslimit=opslimit,
        memlimit=memlimit,
    )
    local_key = os.urandom(KEY_BYTES)
    prekeys = first_prekeys(config, identity, LocalBox(local_key), now)
    bundle: dict[str, object] = {
        "participant_id": participant_id,
        "identity_key": identity.public.to_text(),
        "prekeys": [base64.b64encode(p.statement).decode("ascii") for p in prekeys],
    }
    return key_file, local_key, prekeys, bundle


def config_text(
    participant_id: str,
    cell_id: str,
    root_key: str,
    hub_url: str,
    hub_log_key: str,
    suite: Suite,
    api_port: int,
    hub_origin: str = "",
) -> str:
    """The gateway.toml of a new gateway; strings quoted (JSON escapes are TOML escapes), so a
    value cannot end its string and add keys of its own. ``hub_origin`` "" leaves the hub's
    log origin at its default, ``livcr-exchange/<cell_id>``."""
    suite_name = "xwing" if suite is Suite.XWING else "x25519"
    origin_line = f"hub_origin = {json.dumps(hub_origin)}\n" if hub_origin else ""
    return (
        "# livcr gateway configuration (see README: services embedding the library)\n"
        "[gateway]\n"
        f"participant_id = {json.dumps(participant_id)}\n"
        f"cell_id = {json.dumps(cell_id)}\n"
        f"root_key = {json.dumps(root_key)}\n"
        f"hub_url = {json.dumps(hub_url)}\n"
        f"hub_log_key = {json.dumps(hub_log_key)}\n"
        f"{origin_line}"
        f'suite = "{suite_name}"\n\n'
        "[api]\n"
        'host = "127.0.0.1"\n'
        f"port = {int(api_port)}\n\n"
        "[logging]\n"
        'format = "json"\n'
    )


def first_prekeys(
    config: GatewayConfig, identity: IdentityKey, box: LocalBox, now: int
) -> list[FirstPrekey]:
    """Two consecutive prekeys, their secrets sealed with the local key."""
    lifetime = config.gateway.prekey_lifetime_days * DAY
    made = []
    for start in (now - DAY, now - DAY + lifetime):
        secret = PrekeySecret(config.suite, os.urandom(config.suite.secret_seed_bytes))
        statement = PrekeyStatement(
            config.participant_id, identity.key_id, secret.public, start, start + lifetime
        ).sign(identity)
        sealed = box.seal(b"prekey|" + secret.key_id, secret.seed)
        made.append(FirstPrekey(secret.key_id, sealed, statement, start, start + lifetime))
    return made


async def _store_prekeys(config: GatewayConfig, prekeys: list[FirstPrekey]) -> None:
    """Raises OSError when SQLite cannot write the store (a full disk, say)."""
    database = config.path(config.gateway.database)
    store = GatewayStore(database)
    try:
        await store.open()
        for p in prekeys:
            await store.add_prekey(
                p.prekey_id, p.sealed_secret, p.statement, p.not_before, p.not_after
            )
    except sqlite3.Error as exc:
        raise OSError(f"{database}: {exc}") from exc
    finally:
        await store.close()


def _targets(config: GatewayConfig, config_path: Path, bundle_path: Path) -> list[Path]:
    """Every file ``init_gateway`` may create."""
    database = config.path(config.gateway.database)
    return [
        config_path,
        bundle_path,
        config.path(config.gateway.key_file),
        config.path(config.gateway.local_key_file),
        config.path(config.api.token_file),
        database,
        *(database.with_name(database.name + side) for side in SQLITE_SIDE_FILES),
    ]


def _write_new(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file, linked into place (never over an
    existing file) once it is on disk."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        write_private(temporary, data)
        temporary.chmod(0o644)  # the bundle and the configuration hold no secret
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _missing_folders(directory: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create, deepest first."""
    missing = []
    folder = directory.absolute()
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove(files: list[Path], folders: list[Path]) -> None:
    """Undo a failed ``init_gateway``: only what it created (none of them existed before)."""
    for path in files:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            continue
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break
