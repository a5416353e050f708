"""The hub's TOML configuration, validated at start-up with errors that name the bad key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.errors import LivcrError
from livcr_exchange.keys import IdentityPublicKey
from livcr_exchange.request_auth import check_origin
from livcr_exchange.wire import check_ident


class ConfigError(Exception):
    """The configuration file is missing, not TOML, or has a bad or unknown key."""


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


class HubSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cell_id: str
    root_key: str  # livcr-ed25519:... (the cell root's public key)
    log_key_file: str = "log.key"  # the hub's checkpoint-signing key, mode 0600
    origin: str = ""  # checkpoint origin line; default "livcr-exchange/<cell_id>"
    host: str = "127.0.0.1"
    port: Port = 8700
    max_request_bytes: Annotated[int, msgspec.Meta(ge=1024, le=512 * 1024 * 1024)] = (
        64 * 1024 * 1024
    )
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] = 365
    checkpoint_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0


class HubConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    hub: HubSection
    store: StoreConfig = StoreConfig()
    logging: LoggingConfig = LoggingConfig()
    tls: TLSConfig | None = None
    base_dir: str = "."  # set by load_config: relative paths are relative to the file

    @property
    def origin(self) -> str:
        return self.hub.origin or default_origin(self.hub.cell_id)

    def path(self, relative: str) -> Path:
        return Path(self.base_dir) / relative

    @property
    def root_key(self) -> IdentityPublicKey:
        return IdentityPublicKey.from_text(self.hub.root_key)


def parse_config(text: str, base_dir: Path, source: str = "config") -> HubConfig:
    """Validate TOML text. Raises ConfigError naming the file and the offending key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    raw["base_dir"] = str(base_dir)
    try:
        config = msgspec.convert(raw, HubConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    try:
        check_ident(config.hub.cell_id, "hub.cell_id")
        check_origin(config.origin)  # gateways name it in every request signature (§11.1)
        config.root_key  # noqa: B018  (validates the text form)
    except LivcrError as exc:
        raise ConfigError(f"{source}: {exc} - at `$.hub`") from exc
    _check_store(config.store, source)
    return config


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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, path.resolve().parent, str(path))
