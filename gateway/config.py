"""The gateway's TOML configuration, validated at start-up with errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from livcr_exchange.audit.checkpoint import default_origin
from livcr_exchange.keys import IdentityPublicKey, Suite
from livcr_exchange.request_auth import HubBinding, check_origin
from livcr_exchange.service.config_files import ConfigError, check_keys, load_toml, parse_toml
from livcr_exchange.wire import check_ident

__all__ = ["ConfigError", "GatewayConfig", "load_config", "parse_config"]


Days = Annotated[int, msgspec.Meta(ge=1, le=35)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]


class GatewaySection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    participant_id: str
    cell_id: str
    root_key: str  # the cell root key this gateway was enrolled with (livcr-ed25519:...)
    hub_url: str
    hub_log_key: str  # the hub's checkpoint key (livcr-ed25519:...), from the operator
    hub_origin: str = ""  # the hub's log origin, from the operator; "" = livcr-exchange/<cell_id>
    key_file: str = "identity.secret"  # passphrase from $LIVCR_PASSPHRASE
    local_key_file: str = "local.key"  # encrypts the dossier and prekey secrets at rest
    database: str = "gateway.sqlite3"
    suite: Literal["xwing", "x25519"] = "xwing"
    prekey_lifetime_days: Days = 7
    message_ttl_days: Days = 14
    maintenance_interval_seconds: Seconds = 300.0
    retry_initial_seconds: Seconds = 0.5
    retry_max_seconds: Seconds = 60.0


class APISection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8800
    unix_socket: str = ""  # when set, listen here instead of host:port
    token_file: str = "api.token"  # noqa: S105  (a file name)


class LoggingSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


# What each key means: docs/configuration.md is made from this table
# (docs/generate_configuration.py); a test checks every field of the structs has a line here.
MEANINGS: dict[str, str] = {
    "gateway.participant_id": "This service's id in the cell, e.g. `caw`.",
    "gateway.cell_id": "The cell's id, e.g. `gent`.",
    "gateway.root_key": "The cell root key this gateway was enrolled with (livcr-ed25519:...).",
    "gateway.hub_url": "The hub's base URL, http(s)://...",
    "gateway.hub_log_key": "The hub's checkpoint key (livcr-ed25519:...), from the operator.",
    "gateway.hub_origin": "The hub's log origin, from the operator; empty: livcr-exchange/<cell>.",
    "gateway.key_file": "The identity and prekey file; its passphrase is $LIVCR_PASSPHRASE.",
    "gateway.local_key_file": "Encrypts the dossier and prekey secrets at rest (mode 0600).",
    "gateway.database": "The gateway's SQLite file: outbox, dossier, cached directory.",
    "gateway.suite": "`xwing` (ML-KEM-768 + X25519) or `x25519` for new prekeys.",
    "gateway.prekey_lifetime_days": "Validity of each new prekey, in days.",
    "gateway.message_ttl_days": "How long a sent message may wait for delivery, in days.",
    "gateway.maintenance_interval_seconds": "How often directory, prekeys and log are checked.",
    "gateway.retry_initial_seconds": "First wait before resending to a hub that did not answer.",
    "gateway.retry_max_seconds": "Longest wait between resends (the wait doubles up to this).",
    "api.host": "Address of the local API; keep it on loopback.",
    "api.port": "Port of the local API.",
    "api.unix_socket": "When set, the local API listens on this socket instead of host:port.",
    "api.token_file": "The local API's bearer token (mode 0600).",
    "logging.format": "`json` (one JSON object per line) or `console` (for a person).",
    "logging.level": "`debug`, `info`, `warning` or `error`.",
}


class GatewayConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    gateway: GatewaySection
    api: APISection = APISection()
    logging: LoggingSection = LoggingSection()
    base_dir: str = "."

    def path(self, relative: str) -> Path:
        return Path(self.base_dir) / relative

    @property
    def participant_id(self) -> str:
        return self.gateway.participant_id

    @property
    def root_key(self) -> IdentityPublicKey:
        return IdentityPublicKey.from_text(self.gateway.root_key)

    @property
    def hub_log_key(self) -> IdentityPublicKey:
        return IdentityPublicKey.from_text(self.gateway.hub_log_key)

    @property
    def suite(self) -> Suite:
        return Suite.XWING if self.gateway.suite == "xwing" else Suite.X25519

    @property
    def log_origin(self) -> str:
        """The origin the hub's checkpoints must carry, and every request signature names."""
        return self.gateway.hub_origin or default_origin(self.gateway.cell_id)

    @property
    def hub(self) -> HubBinding:
        return HubBinding(self.gateway.cell_id, self.log_origin)


def parse_config(text: str, base_dir: Path, source: str = "config") -> GatewayConfig:
    """Validate TOML text. Raises ConfigError naming the file and the offending key."""
    config = parse_toml(text, GatewayConfig, base_dir, source, service="gateway", other="hub")
    check_keys(
        source,
        (
            ("gateway.participant_id", lambda: check_ident(config.gateway.participant_id)),
            ("gateway.cell_id", lambda: check_ident(config.gateway.cell_id)),
            ("gateway.root_key", lambda: config.root_key),
            ("gateway.hub_log_key", lambda: config.hub_log_key),
            ("gateway.hub_origin", lambda: check_origin(config.log_origin)),
        ),
    )
    if not _is_http_url(config.gateway.hub_url):
        raise ConfigError(f"{source}: hub_url must be an http(s) URL - at `$.gateway.hub_url`")
    return config


def _is_http_url(text: str) -> bool:
    """http(s)://host[:port][/path], without white space or control characters."""
    if not text.isprintable() or any(c.isspace() for c in text):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError for a port that is not one)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway config file. Raises ConfigError."""
    return load_toml(path, parse_config)
