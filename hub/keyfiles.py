"""The hub's own key files: the cell root (passphrase-protected) and the log key (mode 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from livcr_exchange.errors import LivcrError
from livcr_exchange.keyfile import SecretBundle, lock, unlock
from livcr_exchange.keys import IdentityKey
from livcr_exchange.service.files import write_private
from livcr_exchange.wire import b64, unb64

LOG_KEY_PREFIX = "livcr-ed25519-secret:"
ROOT_BUNDLE_ID = "cell-root"


class KeyFileError(Exception):
    """A key file that is missing, readable by others, or not what it claims to be."""


def write_log_key(path: Path, key: IdentityKey) -> None:
    write_private(path, (LOG_KEY_PREFIX + b64(key.seed) + "\n").encode("ascii"))


def read_log_key(path: Path) -> IdentityKey:
    """Raises KeyFileError if the file is missing, group/world-accessible or malformed."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the log key: {exc}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(f"{path}: log key is readable by others (chmod 600 it)")
    if not text.startswith(LOG_KEY_PREFIX):
        raise KeyFileError(f"{path}: not a livcr log key")
    try:
        return IdentityKey.from_seed(unb64(text.removeprefix(LOG_KEY_PREFIX), "log key"))
    except LivcrError as exc:
        raise KeyFileError(f"{path}: {exc}") from exc


def write_root_key(path: Path, key: IdentityKey, passphrase: bytes) -> None:
    write_private(path, lock(SecretBundle(ROOT_BUNDLE_ID, key), passphrase, os.urandom))


def read_root_key(path: Path, passphrase: bytes) -> IdentityKey:
    """Raises KeyFileError, or WrongPassphrase for a wrong passphrase."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the root key: {exc.strerror}") from exc
    bundle = unlock(data, passphrase)
    if bundle.participant_id != ROOT_BUNDLE_ID:
        raise KeyFileError(f"{path}: holds the key of {bundle.participant_id}, not the cell root")
    return bundle.identity
