"""Creating a gateway: keys, local key, API token, config and the public bundle for the hub."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from pathlib import Path

from livcr_exchange.constants import SECRET_KEY_MEMLIMIT, SECRET_KEY_OPSLIMIT
from livcr_exchange.keyfile import SecretBundle, lock
from livcr_exchange.keys import IdentityKey, PrekeySecret, Suite
from livcr_exchange.statements import PrekeyStatement
from livcr_exchange.wire import check_ident

from .config import GatewayConfig, load_config
from .localbox import LocalBox, create_local_key, read_local_key
from .store import GatewayStore

CONFIG_NAME = "gateway.toml"
DAY = 86_400


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


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
) -> Path:
    """Create a gateway folder; return the path of the public bundle to hand to the hub operator.

    Raises:
        FileExistsError: the folder already holds a gateway.
        ConfigError: a bad identifier, key or URL.
    """
    check_ident(participant_id, "participant id")
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        raise FileExistsError(config_path)
    suite_name = "xwing" if suite is Suite.XWING else "x25519"
    text = (
        "# livcr gateway configuration (see README: services embedding the library)\n"
        "[gateway]\n"
        f'participant_id = "{participant_id}"\n'
        f'cell_id = "{cell_id}"\n'
        f'root_key = "{root_key}"\n'
        f'hub_url = "{hub_url}"\n'
        f'hub_log_key = "{hub_log_key}"\n'
        f'suite = "{suite_name}"\n\n'
        "[api]\n"
        'host = "127.0.0.1"\n'
        f"port = {api_port}\n\n"
        "[logging]\n"
        'format = "json"\n'
    )
    config_path.write_text(text)
    config = load_config(config_path)  # validates what we wrote
    identity = IdentityKey.from_seed(os.urandom(32))
    opslimit, memlimit = key_cost
    write_private(
        config.path(config.gateway.key_file),
        lock(
            SecretBundle(participant_id, identity),
            passphrase,
            os.urandom,
            opslimit=opslimit,
            memlimit=memlimit,
        ),
    )
    create_local_key(config.path(config.gateway.local_key_file))
    write_private(config.path(config.api.token_file), secrets.token_urlsafe(32).encode("ascii"))
    statements = asyncio.run(_first_prekeys(config, identity, now))
    bundle_path = directory / f"{participant_id}.public.json"
    bundle_path.write_text(
        json.dumps(
            {
                "participant_id": participant_id,
                "identity_key": identity.public.to_text(),
                "prekeys": [base64.b64encode(s).decode("ascii") for s in statements],
            },
            indent=2,
        )
        + "\n"
    )
    return bundle_path


async def _first_prekeys(config: GatewayConfig, identity: IdentityKey, now: int) -> list[bytes]:
    """Two consecutive prekeys, sealed with the local key in the gateway's store."""
    box = LocalBox(read_local_key(config.path(config.gateway.local_key_file)))
    store = GatewayStore(config.path(config.gateway.database))
    await store.open()
    lifetime = config.gateway.prekey_lifetime_days * DAY
    statements = []
    try:
        for start in (now - DAY, now - DAY + lifetime):
            secret = PrekeySecret(config.suite, os.urandom(config.suite.secret_seed_bytes))
            statement = PrekeyStatement(
                config.participant_id, identity.key_id, secret.public, start, start + lifetime
            ).sign(identity)
            await store.add_prekey(
                secret.key_id,
                box.seal(b"prekey|" + secret.key_id, secret.seed),
                statement,
                start,
                start + lifetime,
            )
            statements.append(statement)
    finally:
        await store.close()
    return statements
