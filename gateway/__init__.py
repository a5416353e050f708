"""The participant gateway: how a service's case-management software takes part in the cell.

The names below are imported when first used, not with the package: a `livcr gateway` command
that only calls the local API loads `gateway.cli_client` without the gateway itself (the hub
client, the store, the crypto), which a script pays for on every line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import GatewayConfig, load_config
    from .context import Message, Receipt
    from .facade import Gateway

__all__ = ["Gateway", "GatewayConfig", "Message", "Receipt", "load_config"]
_HOMES = {
    "Gateway": ".facade",
    "GatewayConfig": ".config",
    "Message": ".context",
    "Receipt": ".context",
    "load_config": ".config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
