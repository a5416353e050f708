"""The hub's TOML configuration, validated at start-up with errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.envelope.open import MAX_ENVELOPE_BYTES
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.request_auth import check_origin
from livcr_exchange.service.config_files import ConfigError, check_keys, load_toml, parse_toml
from livcr_exchange.wire import check_ident

__all__ = ["ConfigError", "HubConfig", "load_config", "parse_config"]


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    kind: Literal["sqlite", "postgresql"] = "sqlite"
    path: str = "hub.sqlite3"  # sqlite: relative to the config file's folder
    dsn: str = ""  # postgresql: e.g. "postgresql://postgres@127.0.0.1:5432/test"
    pool_size: Annotated[int, msgspec.Meta(ge=2, le=64)] = 8  # postgresql: per hub process


class TLSConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cert_file: str
    key_file: str


class LoggingConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ConsoleConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The operator's console: its own listener, apart from the participants' API."""

    host: str = "127.0.0.1"  # loopback: reach it through an SSH tunnel or a local proxy
    port: Port = 8701
    operators_file: str = "operators.json"  # Argon2id hashes of the operator credentials, 0600
    session_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] = 480


class HubSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cell_id: str
    root_key: str  # livcr-ed25519:... (the cell root's public key)
    log_key_file: str = "log.key"  # the hub's checkpoint-signing key, mode 0600
    origin: str = ""  # checkpoint origin line; default "livcr-exchange/<cell_id>"
    host: str = "127.0.0.1"
    port: Port = 8700
    # The largest envelope the protocol allows (256 MiB of body, sealed, with its header):
    # bodies this large are streamed to storage, never held in memory (hub/intake.py).
    max_request_bytes: Annotated[int, msgspec.Meta(ge=1024, le=512 * 1024 * 1024)] = (
        MAX_ENVELOPE_BYTES
    )
    # Bodies of every other route than the envelope routes (hub/admission.py).
    max_control_request_bytes: Annotated[int, msgspec.Meta(ge=1024, le=512 * 1024 * 1024)] = (
        1024 * 1024
    )
    # Request bodies held in memory at once, across the process: a body being read counts
    # twice its length (the buffer and its copy), a body being handled once.
    body_memory_budget_bytes: Annotated[int, msgspec.Meta(ge=4096, le=64 * 1024**3)] = (
        256 * 1024 * 1024
    )
    # Envelope bytes streamed to storage whose request is not yet authenticated, at once,
    # across the process: a submission is checked by its signature only once its body is in, so
    # this bounds the disk that requests from nobody can take (hub/intake.py).
    streamed_body_budget_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024**4)] = (
        1024 * 1024 * 1024
    )
    # A connection that has not sent a whole request line and headers by then is closed (also
    # how long an idle keep-alive connection stays open).
    header_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 20.0
    # A body of n bytes must arrive within body_grace_seconds + n / body_min_rate_bytes.
    body_grace_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    body_min_rate_bytes: Annotated[int, msgspec.Meta(ge=1, le=1024**3)] = 128 * 1024
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] = 365
    checkpoint_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0
    locale: Literal["nl", "en"] = "nl"  # the operator's console speaks Dutch or English


class HubConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    hub: HubSection
    store: StoreConfig = StoreConfig()
    logging: LoggingConfig = LoggingConfig()
    tls: TLSConfig | None = None
    base_dir: str = "."  # set by load_config: relative paths are relative to the file
    console: ConsoleConfig | None = None  # no [console] section: no operator's console

    @property
    def origin(self) -> str:
        return self.hub.origin or default_origin(self.hub.cell_id)

    def path(self, relative: str) -> Path:
        return Path(self.base_dir) / relative

    @property
    def root_key(self) -> IdentityPublicKey:
        return IdentityPublicKey.from_text(self.hub.root_key)


# What each key means: docs/configuration.md and the comments of the hub.toml `livcr hub init`
# writes are made from this table (docs/generate_configuration.py); a test checks every field of
# the structs above has a line here.
MEANINGS: dict[str, str] = {
    "hub.cell_id": "The cell's identifier, e.g. `gent`; every statement and checkpoint names it.",
    "hub.root_key": "The cell root's public key (livcr-ed25519:...), which signs the directory.",
    "hub.log_key_file": "The checkpoint-signing key, mode 0600 (relative to this file).",
    "hub.origin": "The checkpoint origin line; empty means `livcr-exchange/<cell_id>`.",
    "hub.host": "Address to listen on; 0.0.0.0 or :: for every interface.",
    "hub.port": "Port to listen on (`livcr hub serve --port` overrides it per process).",
    "hub.max_request_bytes": (
        "Largest envelope submission accepted, in bytes (default: the protocol's largest);"
        " one over 1 MiB is streamed to storage, not held in memory."
    ),
    "hub.max_control_request_bytes": "Largest body on every route but the envelope routes.",
    "hub.body_memory_budget_bytes": (
        "Request bodies held in memory at once, across the process (streamed envelopes do"
        " not count); over it, 503 `busy`."
    ),
    "hub.streamed_body_budget_bytes": (
        "Envelope bytes being streamed to storage at once, across the process, before their"
        " signature is checked (a submission counts its declared length); over it, 503 `busy`."
        " At least max_request_bytes."
    ),
    "hub.header_timeout_seconds": (
        "A connection that has not sent its request line and headers by then is closed."
    ),
    "hub.body_grace_seconds": "A body of n bytes must arrive within this + n / body_min_rate.",
    "hub.body_min_rate_bytes": "The slowest body rate accepted, in bytes per second.",
    "hub.locale": "The operator's console language: `nl` or `en`.",
    "hub.retention_days": "Days after a case's closure before its envelopes and leaf data go.",
    "hub.checkpoint_interval_seconds": "How often a new checkpoint is signed while leaves come.",
    "store.kind": "`sqlite` (one hub process) or `postgresql` (several processes).",
    "store.path": "SQLite: the database file (relative to this file).",
    "store.dsn": "PostgreSQL: postgresql://user@host:port/database; only with kind postgresql.",
    "store.pool_size": "PostgreSQL: connections per hub process (each opens up to 1.5x + 1).",
    "logging.format": "`json` (one JSON object per line) or `console` (for a person).",
    "logging.level": "`debug`, `info`, `warning` or `error`.",
    "console.host": "The operator's console listens here (loopback: reach it through a tunnel).",
    "console.port": "The operator's console port, apart from the participants' API.",
    "console.operators_file": "Argon2id hashes of the operator credentials, mode 0600.",
    "console.session_minutes": "How long an operator's console session lasts.",
    "tls.cert_file": "TLS: the certificate chain (PEM); the hub then serves HTTPS only.",
    "tls.key_file": "TLS: the certificate's private key (PEM).",
}


def parse_config(text: str, base_dir: Path, source: str = "config") -> HubConfig:
    """Validate TOML text. Raises ConfigError naming the file and the offending key."""
    config = parse_toml(text, HubConfig, base_dir, source, service="hub", other="gateway")
    check_keys(
        source,
        (
            ("hub.cell_id", lambda: check_ident(config.hub.cell_id, "hub.cell_id")),
            # gateways name the origin in every request signature (§11.1)
            ("hub.origin", lambda: check_origin(config.origin)),
            ("hub.root_key", lambda: config.root_key),
        ),
    )
    _check_store(config.store, source)
    if config.hub.body_memory_budget_bytes < 2 * largest_read_whole(config.hub):
        raise ConfigError(
            f"{source}: hub.body_memory_budget_bytes must be at least twice the largest body"
            " read whole (a body counts twice while it is read)"
            " - at `$.hub.body_memory_budget_bytes`"
        )
    if config.hub.streamed_body_budget_bytes < config.hub.max_request_bytes:
        raise ConfigError(
            f"{source}: hub.streamed_body_budget_bytes must be at least hub.max_request_bytes"
            " (else the largest envelope could never be received)"
            " - at `$.hub.streamed_body_budget_bytes`"
        )
    return config


# An envelope submission declaring at most this is read whole (under the memory budget) and
# stored in its row with a group commit; a larger one, or one of unknown length, is streamed
# to out-of-line storage as it arrives and never held whole (hub/intake.py).
INLINE_ENVELOPE_BYTES = 1024 * 1024
BATCH_MAX_BYTES = 16 * 1024 * 1024  # the batch route is for small envelopes


def largest_read_whole(section: HubSection) -> int:
    """The largest request body the hub reads whole, on any route."""
    cap = section.max_request_bytes
    return min(cap, max(INLINE_ENVELOPE_BYTES, BATCH_MAX_BYTES, section.max_control_request_bytes))


def _check_store(store: StoreConfig, source: str) -> None:
    if store.kind == "postgresql":
        if not store.dsn:
            raise ConfigError(
                f'{source}: store.dsn is required for kind = "postgresql" - at `$.store.dsn`'
            )
        if not store.dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"{source}: store.dsn must be a postgresql:// URL, e.g. "
                '"postgresql://postgres@127.0.0.1:5432/test" - at `$.store.dsn`'
            )
    elif store.dsn:
        raise ConfigError(
            f'{source}: store.dsn is only read when kind = "postgresql" - at `$.store.dsn`'
        )


def load_config(path: Path) -> HubConfig:
    """Read and validate a hub config file. Raises ConfigError."""
    return load_toml(path, parse_config)
