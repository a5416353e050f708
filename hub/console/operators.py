"""Operator credentials for the console: names and Argon2id password hashes in a 0600 file.

The file is JSON ``{"operators": {"<name>": "<argon2id hash string>"}}``. Hashing uses PyNaCl's
``pwhash.argon2id`` (libsodium); the hash string carries its own salt and cost parameters.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import nacl.exceptions
import nacl.pwhash

from livcr_exchange.service.files import replace_private

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD_CHARS = 12
# libsodium's "interactive" cost: about 0.1 s and 64 MiB per login on a small server.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


class OperatorError(Exception):
    """A bad operator name or password, or an unreadable credentials file."""


def read_operators(path: Path) -> dict[str, bytes]:
    """Name -> Argon2id hash string; an absent file holds no operator.

    Raises:
        OperatorError: the file is not a credentials file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise OperatorError(f"{path}: not an operators file: {exc}") from exc
    operators = data.get("operators") if isinstance(data, dict) else None
    if not isinstance(operators, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in operators.items()
    ):
        raise OperatorError(f"{path}: expected {{'operators': {{name: hash}}}}")
    return {name: hashed.encode("ascii") for name, hashed in operators.items()}


def write_operators(path: Path, operators: dict[str, bytes]) -> None:
    """Replace the file atomically, readable by its owner only."""
    text = json.dumps(
        {"operators": {k: v.decode("ascii") for k, v in sorted(operators.items())}}, indent=1
    )
    replace_private(path, (text + "\n").encode("utf-8"))


def hash_password(password: str) -> bytes:
    """Raises OperatorError when the password is shorter than MIN_PASSWORD_CHARS."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise OperatorError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    hashed: bytes = nacl.pwhash.argon2id.str(
        password.encode("utf-8"), opslimit=OPSLIMIT, memlimit=MEMLIMIT
    )
    return hashed


def add_operator(path: Path, name: str, password: str) -> None:
    """Add ``name`` or set its password.

    Raises:
        OperatorError: bad name, short password or unreadable file.
    """
    if NAME_PATTERN.fullmatch(name) is None:
        raise OperatorError("an operator name is lowercase letters, digits, '.', '_' or '-'")
    operators = read_operators(path)
    operators[name] = hash_password(password)
    write_operators(path, operators)


def remove_operator(path: Path, name: str) -> bool:
    """Remove ``name``; False when there was no such operator. Raises OperatorError."""
    operators = read_operators(path)
    if operators.pop(name, None) is None:
        return False
    write_operators(path, operators)
    return True


def check_password(operators: dict[str, bytes], name: str, password: str) -> bool:
    """Whether ``password`` is ``name``'s. An unknown name costs a hash too (no timing oracle)."""
    hashed = operators.get(name) or _decoy()
    try:
        nacl.pwhash.argon2id.verify(hashed, password.encode("utf-8"))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError):
        return False
    return name in operators


@functools.cache
def _decoy() -> bytes:
    decoy: bytes = nacl.pwhash.argon2id.str(b"no operator", opslimit=OPSLIMIT, memlimit=MEMLIMIT)
    return decoy
