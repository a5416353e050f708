"""The hub's durable state behind one interface (SQLite by default)."""

from .base import (
    CaseRecord,
    DeliveryRecord,
    HubStore,
    PendingLeaf,
    StoreError,
    WriteBatch,
)

__all__ = ["CaseRecord", "DeliveryRecord", "HubStore", "PendingLeaf", "StoreError", "WriteBatch"]
