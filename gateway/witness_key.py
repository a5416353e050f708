"""A gateway's own witness key (spec §10.7): a name and an Ed25519 key, kept apart from its
identity key (one key, one purpose), in ``witness.key`` beside its other private files."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from livcr_exchange.audit.cosignature import WitnessKey
from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityKey
from livcr_exchange.service.files import write_private
from livcr_exchange.wire import b64, unb64

WITNESS_KEY_FILE = "witness.key"
SECRET_PREFIX = "livcr-ed25519-secret:"  # noqa: S105  (a format prefix, not a secret)


class WitnessKeyError(Exception):
    """A witness key file that is readable by others or not what it claims to be."""


@dataclass(frozen=True)
class GatewayWitness:
    name: str
    key: IdentityKey

    @property
    def public(self) -> WitnessKey:
        return WitnessKey(self.name, self.key.public.raw)


def create_witness_key(folder: Path, name: str, seed: bytes) -> GatewayWitness:
    """Write ``witness.key`` (mode 0600, never over an existing one).

    Raises:
        Malformed: the name is not a valid witness name.
        FileExistsError: the gateway has a witness key already.
    """
    witness = GatewayWitness(name, IdentityKey.from_seed(seed))
    witness.public  # noqa: B018  (checks the name before anything is written)
    write_private(folder / WITNESS_KEY_FILE, f"{name}\n{SECRET_PREFIX}{b64(seed)}\n".encode())
    return witness


def read_witness_key(folder: Path) -> GatewayWitness | None:
    """The gateway's witness key, or None when it is not a witness.

    Raises:
        WitnessKeyError: the file is accessible to others or malformed.
    """
    path = folder / WITNESS_KEY_FILE
    if not path.exists():
        return None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise WitnessKeyError(f"{path}: readable by others (chmod 600 it)")
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) != 2 or not lines[1].startswith(SECRET_PREFIX):
        raise WitnessKeyError(f"{path}: not a livcr witness key")
    try:
        witness = GatewayWitness(
            lines[0], IdentityKey.from_seed(unb64(lines[1].removeprefix(SECRET_PREFIX)))
        )
        witness.public  # noqa: B018  (validates the name)
    except LivcrError as exc:
        raise WitnessKeyError(f"{path}: {exc}") from exc
    return witness
