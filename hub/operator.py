"""Operator tasks on a hub's store: create a cell, enrol and revoke, status, verify, export.

They work on the store directly (the hub may be running: the store serialises writes and gives
every leaf its place in the one log), and they never touch content: there is none to touch.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livcr_exchange.audit.checkpoint import open_checkpoint
from livcr_exchange.audit.leaves import DirectoryChange, decode_leaf
from livcr_exchange.audit.merkle import LeafHashList, leaf_hash, root_hash
from livcr_exchange.directory import Directory
from livcr_exchange.errors import LivcrError
from livcr_exchange.hashing import labelled_hash
from livcr_exchange.keys import IdentityKey, IdentityPublicKey
from livcr_exchange.policy import roles_on_some_case
from livcr_exchange.purposes import CATALOGUE
from livcr_exchange.roles import Role
from livcr_exchange.statements import DirectoryEntry, PrekeyStatement, Revocation, StatementType
from livcr_exchange.times import iso8601

from .config import MEANINGS, HubConfig
from .enrolment import EnrolmentRefused, check_enrolment
from .keyfiles import write_log_key, write_root_key
from .operations import STATEMENT_HASH_LABEL, pending_leaf
from .store.base import HubStore, StoreError, WriteBatch
from .store.migrations import MigrationReport
from .store.sqlite import SQLiteStore

CONFIG_NAME = "hub.toml"
DAY = 86_400


def open_store(config: HubConfig) -> HubStore:
    """The store the config names (not yet opened)."""
    if config.store.kind == "postgresql":
        from .store.postgres import PostgresStore  # noqa: PLC0415  (SQLite needs no driver)

        return PostgresStore(config.store.dsn, pool_size=config.store.pool_size)
    return SQLiteStore(config.path(config.store.path))


async def migrate(config: HubConfig) -> MigrationReport:
    """Bring the configured store's schema to this hub's version (`livcr hub migrate`).

    Raises:
        StoreError: the store is unreachable or was written by a newer hub.
    """
    if config.store.kind == "postgresql":
        from .store.postgres import PostgresStore  # noqa: PLC0415

        return await PostgresStore(config.store.dsn).migrate()
    store = SQLiteStore(config.path(config.store.path))
    await store.open()  # SQLite migrates as it opens
    try:
        if store.migration is None:
            raise StoreError("the SQLite store opened without checking its schema")
        return store.migration
    finally:
        await store.close()


@asynccontextmanager
async def opened(config: HubConfig) -> AsyncIterator[HubStore]:
    store = open_store(config)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def init_cell(
    directory: Path,
    cell_id: str,
    passphrase: bytes,
    *,
    port: int = 8700,
    dsn: str | None = None,
    console_port: int | None = None,
) -> dict[str, Path | str]:
    """Create a cell's root key, the hub's log key and a config; the store is made on first use.

    With ``dsn`` the store is that PostgreSQL database (`livcr hub migrate` prepares it), else
    a SQLite file beside the config. With ``console_port`` the config has a [console] section:
    the operator's console listens there on 127.0.0.1.

    Raises:
        FileExistsError: the folder already holds a cell.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        raise FileExistsError(config_path)
    root = IdentityKey.from_seed(os.urandom(32))
    log_key = IdentityKey.from_seed(os.urandom(32))
    write_root_key(directory / "root.secret", root, passphrase)
    write_log_key(directory / "log.key", log_key)
    store: dict[str, object] = (
        {"kind": "sqlite", "path": "hub.sqlite3"}
        if dsn is None
        else {"kind": "postgresql", "dsn": dsn}
    )
    hub = {
        "cell_id": cell_id,
        "root_key": root.public.to_text(),
        "log_key_file": "log.key",
        "host": "127.0.0.1",
        "port": port,
        "retention_days": 365,
    }
    sections: dict[str, dict[str, object]] = {
        "hub": hub,
        "store": store,
        "logging": {"format": "json"},
    }
    if console_port is not None:
        sections["console"] = {
            "host": "127.0.0.1",
            "port": console_port,
            "operators_file": "operators.json",
        }
    config_path.write_text(commented_toml(sections))
    return {
        "config": config_path,
        "root_key": root.public.to_text(),
        "log_key": log_key.public.to_text(),
    }


def commented_toml(sections: dict[str, dict[str, object]]) -> str:
    """A hub.toml whose every key has its meaning above it (hub.config.MEANINGS)."""
    lines = ["# livcr hub configuration; every key and its default: docs/configuration.md"]
    for section, values in sections.items():
        lines += ["", f"[{section}]"]
        for key, value in values.items():
            lines.append(f"# {MEANINGS[f'{section}.{key}']}")
            lines.append(f"{key} = {json.dumps(value)}")  # JSON strings and numbers are TOML
    return "\n".join(lines) + "\n"


def default_purposes(role: Role) -> frozenset[str]:
    """Every purpose the role can send or receive, by the catalogue, including those of the
    roles it may hold on a case (a deelnemer appointed case owner sends the progress report)."""
    roles = roles_on_some_case(role)
    return frozenset(
        tag for tag, p in CATALOGUE.items() if roles & p.sender_roles or roles & p.recipient_roles
    )


@dataclass(frozen=True)
class PublicBundle:
    """What `livcr keys new` / `livcr gateway init` hands to the hub operator."""

    participant_id: str
    identity_key: IdentityPublicKey
    prekeys: tuple[bytes, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicBundle:
        """Raises LivcrError (or KeyError/TypeError) for a bundle that is not well formed."""
        identity = IdentityPublicKey.from_text(data["identity_key"])
        prekeys = tuple(base64.b64decode(p, validate=True) for p in data.get("prekeys", []))
        for signed in prekeys:
            statement = PrekeyStatement.open(signed, identity)
            if statement.participant_id != data["participant_id"]:
                raise ValueError("a prekey in the bundle names another participant")
        return cls(str(data["participant_id"]), identity, prekeys)


async def enrol(
    store: HubStore,
    config: HubConfig,
    root: IdentityKey,
    bundle: PublicBundle,
    *,
    role: Role,
    organisation: str,
    purposes: Iterable[str] | None,
    now: int,
    valid_days: int,
    replace: bool = False,
    reenrol: bool = False,
) -> DirectoryEntry:
    """Sign a directory entry with the root key and store it with the bundle's prekeys.

    Raises:
        EnrolmentRefused: an unknown purpose; a participant enrolled already (without
            ``replace``: the message shows what would change); a revoked one (without
            ``reenrol``); a revoked key (never: a revoked key stays revoked).
        ValueError: ``root`` is not the cell's root key.
    """
    if root.public != config.root_key:
        raise ValueError("this root key is not the one the hub's config names")
    chosen = default_purposes(role) if purposes is None else frozenset(purposes)
    unknown = sorted(chosen - set(CATALOGUE))
    if unknown:
        raise EnrolmentRefused(
            f"unknown purposes: {', '.join(unknown)} (`livcr purposes list` names them all)"
        )
    entry = DirectoryEntry(
        config.hub.cell_id,
        bundle.participant_id,
        organisation,
        role,
        bundle.identity_key,
        chosen,
        now,
        now + valid_days * DAY,
    )
    check_enrolment(await load_directory(store, config), entry, replace=replace, reenrol=reenrol)
    signed = entry.sign(root)
    batch = WriteBatch(statements=[("entry", entry.participant_id, signed)])
    batch.leaves.append(
        _directory_leaf(now, StatementType.DIRECTORY_ENTRY, entry.participant_id, signed)
    )
    for prekey in bundle.prekeys:
        statement = PrekeyStatement.open(prekey, bundle.identity_key)
        batch.prekeys.append(
            (
                entry.participant_id,
                statement.prekey_id,
                prekey,
                statement.not_before,
                statement.not_after,
            )
        )
        batch.leaves.append(
            _directory_leaf(now, StatementType.PREKEY, entry.participant_id, prekey)
        )
    await store.commit(batch)
    return entry


async def revoke(
    store: HubStore,
    config: HubConfig,
    root: IdentityKey,
    participant_id: str,
    *,
    reason: str,
    at: int,
) -> list[Revocation]:
    """Revoke every key of a participant from ``at`` on; the revocations made, none when every
    key was revoked already (revoking twice changes nothing).

    Raises:
        LookupError: the participant was never enrolled.
    """
    directory = await load_directory(store, config)
    keys = {e.identity_key.key_id for e in directory.entries if e.participant_id == participant_id}
    if not keys:
        raise LookupError(f"{participant_id} is not enrolled")
    keys -= {r.identity_key_id for r in directory.revocations}
    if not keys:
        return []
    batch = WriteBatch()
    revocations = [
        Revocation(config.hub.cell_id, participant_id, key_id, at, reason)
        for key_id in sorted(keys)
    ]
    for revocation in revocations:
        signed = revocation.sign(root)
        batch.statements.append(("revocation", participant_id, signed))
        batch.leaves.append(_directory_leaf(at, StatementType.REVOCATION, participant_id, signed))
    await store.commit(batch)
    return revocations


def _directory_leaf(now: int, kind: StatementType, participant_id: str, signed: bytes) -> Any:
    leaf = DirectoryChange(now, kind, participant_id, labelled_hash(STATEMENT_HASH_LABEL, signed))
    return pending_leaf(leaf)


async def load_directory(store: HubStore, config: HubConfig) -> Directory:
    """The directory as the root signed it: every stored statement is verified."""
    statements = await store.statements()
    return Directory(
        config.hub.cell_id,
        config.root_key,
        tuple(DirectoryEntry.open(s, config.root_key) for k, _, s in statements if k == "entry"),
        tuple(Revocation.open(s, config.root_key) for k, _, s in statements if k == "revocation"),
    )


@dataclass(frozen=True)
class LogReport:
    leaves: int
    checkpoints: int
    retained: int  # leaves whose data retention has deleted
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_log(
    store: HubStore,
    config: HubConfig,
    log_public_key: bytes,
    *,
    on_size: Callable[[int], None] | None = None,
    on_leaves: Callable[[int], None] | None = None,
) -> LogReport:
    """Recompute the tree from the stored leaves and check every stored checkpoint against it.

    A modified leaf fails its hash; a removed one leaves a gap; a reordered or replaced one
    changes the roots the signed checkpoints fixed. ``on_size`` hears the log's size first,
    ``on_leaves`` each batch's number of leaves (for progress).
    """
    problems: list[str] = []
    size = await store.tree_size()
    if on_size is not None:
        on_size(size)
    tree = LeafHashList()
    retained = 0
    for start in range(0, size, 10_000):
        batch = await store.leaves(start, min(size, start + 10_000))
        if on_leaves is not None:
            on_leaves(len(batch))
        for index, stored_hash, data in batch:
            if index != len(tree):
                problems.append(f"leaf {len(tree)} is missing (next stored index is {index})")
                return LogReport(len(tree), 0, retained, problems)
            if data is None:
                retained += 1
            elif leaf_hash(data) != stored_hash:
                problems.append(f"leaf {index}: data does not match its hash (modified)")
            else:
                try:
                    decode_leaf(data)
                except LivcrError as exc:
                    problems.append(f"leaf {index}: {exc}")
            tree.append(stored_hash)
    checkpoints = await store.checkpoints()
    problems += _checkpoint_problems(checkpoints, tree, config.origin, log_public_key)
    return LogReport(len(tree), len(checkpoints), retained, problems)


def _checkpoint_problems(
    checkpoints: list[tuple[int, bytes]], tree: LeafHashList, origin: str, log_public_key: bytes
) -> list[str]:
    """What is wrong with the stored checkpoints, against the recomputed tree."""
    problems = []
    for checkpoint_size, note in checkpoints:
        try:
            checkpoint = open_checkpoint(note, origin, log_public_key)
        except LivcrError as exc:
            problems.append(f"checkpoint {checkpoint_size}: {exc}")
            continue
        if checkpoint.size != checkpoint_size or checkpoint.size > len(tree):
            problems.append(
                f"checkpoint {checkpoint_size}: says {checkpoint.size} leaves, log has {len(tree)}"
            )
        elif checkpoint.root != root_hash(tree, checkpoint.size):
            problems.append(f"checkpoint {checkpoint_size}: root differs from the recomputed log")
    return problems


async def export_audit(
    store: HubStore, config: HubConfig, *, organisation: str | None, case_ref: str | None
) -> AsyncIterator[dict[str, Any]]:
    """Content-free log records for a supervisor or DPO, optionally for one organisation or case."""
    directory = await load_directory(store, config)
    members = None
    if organisation is not None:
        members = {e.participant_id for e in directory.entries if e.organisation == organisation}
    size = await store.tree_size()
    for start in range(0, size, 10_000):
        for index, stored_hash, data in await store.leaves(
            start, min(size, start + 10_000), case_ref
        ):
            record: dict[str, Any] = {"index": index, "leaf_hash": stored_hash.hex()}
            if data is None:
                record["retained"] = "data deleted by retention"
            else:
                record.update(_leaf_record(decode_leaf(data)))
            if members is None or members & _participants_in(record):
                yield record


def _leaf_record(leaf: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"type": type(leaf).__name__}
    for name, value in vars(leaf).items():
        if name.endswith("_at") and isinstance(value, int):
            fields[name] = iso8601(value)  # read by a person: a supervisor or DPO
        elif isinstance(value, bytes):
            fields[name] = value.hex()
        elif isinstance(value, tuple):
            fields[name] = list(value)
        else:
            fields[name] = value
    return fields


def _participants_in(record: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for key in ("sender_id", "recipient_id", "participant_id", "actor_id"):
        if isinstance(record.get(key), str):
            ids.add(record[key])
    for key in ("recipients", "added", "removed", "present"):
        ids.update(record.get(key, []))
    return ids
