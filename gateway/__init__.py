"""The participant gateway: how a service's case-management software takes part in the cell."""

from .config import GatewayConfig, load_config
from .context import Message, Receipt
from .facade import Gateway

__all__ = ["Gateway", "GatewayConfig", "Message", "Receipt", "load_config"]
