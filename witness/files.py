"""The witness's folder: its key (mode 0600), its configuration (name, logs) and its state."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

from livcr_exchange.audit.witness import LogKey
from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityKey, IdentityPublicKey
from livcr_exchange.service.files import write_new, write_private
from livcr_exchange.wire import b64, unb64

KEY_NAME = "witness.key"
CONFIG_NAME = "witness.json"
STATE_NAME = "state.sqlite"
KEY_PREFIX = "livcr-ed25519-secret:"


class WitnessFileError(Exception):
    """A witness folder file that is missing, readable by others, or not what it claims."""


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    logs: dict[str, LogKey]


def init_folder(folder: Path, name: str, seed: bytes) -> IdentityKey:
    """Write a new key and an empty configuration. Raises FileExistsError if either exists."""
    folder.mkdir(parents=True, exist_ok=True)
    key = IdentityKey.from_seed(seed)
    write_private(folder / KEY_NAME, (KEY_PREFIX + b64(key.seed) + "\n").encode("ascii"))
    write_new(folder / CONFIG_NAME, _config_json(WitnessConfig(name, {})), 0o644)
    return key


def read_key(folder: Path) -> IdentityKey:
    """Raises WitnessFileError if the key file is missing, accessible to others or malformed."""
    path = folder / KEY_NAME
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessFileError(f"{path}: cannot read the witness key: {exc}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise WitnessFileError(f"{path}: the witness key is readable by others (chmod 600 it)")
    if not text.startswith(KEY_PREFIX):
        raise WitnessFileError(f"{path}: not a livcr witness key")
    try:
        return IdentityKey.from_seed(unb64(text.removeprefix(KEY_PREFIX), "witness key"))
    except LivcrError as exc:
        raise WitnessFileError(f"{path}: {exc}") from exc


def read_config(folder: Path) -> WitnessConfig:
    """Raises WitnessFileError for a missing or malformed configuration."""
    path = folder / CONFIG_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        logs = {
            item["origin"]: LogKey(
                item["origin"],
                item["key_name"],
                IdentityPublicKey.from_text(item["public_key"]).raw,
            )
            for item in data["logs"]
        }
        return WitnessConfig(str(data["name"]), logs)
    except (OSError, ValueError, KeyError, TypeError, LivcrError) as exc:
        raise WitnessFileError(f"{path}: {exc}") from exc


def _config_json(config: WitnessConfig) -> bytes:
    logs = [
        {
            "origin": log.origin,
            "key_name": log.key_name,
            "public_key": IdentityPublicKey(log.public).to_text(),
        }
        for log in sorted(config.logs.values(), key=lambda item: item.origin)
    ]
    return (json.dumps({"name": config.name, "logs": logs}, indent=1) + "\n").encode()


def write_config(folder: Path, config: WitnessConfig) -> None:
    """Replace the configuration atomically (a new file, fsynced, renamed over the old)."""
    path = folder / CONFIG_NAME
    staging = path.with_suffix(".json.new")
    staging.unlink(missing_ok=True)
    write_new(staging, _config_json(config), 0o644)
    staging.replace(path)
