"""The participant gateway: how a service's case-management software takes part in the cell."""

from .config import GatewayConfig, load_config
from .core import Gateway, Message, Receipt

__all__ = ["Gateway", "GatewayConfig", "Message", "Receipt", "load_config"]
