"""Outbound webhooks (Standard Webhooks): endpoints, the outbox, delivery.

Every part of the program reports an event through one function, `emit(session, type, data)`,
in the transaction of the change itself.
"""

from loyalty.webhooks.service import (
    EVENT_TYPES,
    emit,
    emit_many,
    emit_selected,
    epoch_sql,
    iso,
    iso_sql,
    json_object,
    subscribed,
)

__all__ = [
    "EVENT_TYPES",
    "emit",
    "emit_many",
    "emit_selected",
    "epoch_sql",
    "iso",
    "iso_sql",
    "json_object",
    "subscribed",
]
