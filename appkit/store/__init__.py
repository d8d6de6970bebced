"""appkit's database: conversations, messages, feedback, the model registry, runs, documents.

    from appkit.store import open_store
    store = open_store()                        # SQLite in APPKIT_HOME, migrated on first use
    conv = store.create_conversation("support", title="Order 1234")
    store.append_message(conv.id, "user", "where is my order?")

Names are imported lazily (PEP 562): ``appkit.store.cli`` is imported by ``appkit --help`` and
must not pull in SQLAlchemy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appkit.store.db import current, downgrade, head, mask_url, normalize_url, upgrade
    from appkit.store.keys import hash_key
    from appkit.store.records import (
        ApiKeyRecord,
        ConversationRecord,
        DocumentRecord,
        FeedbackRecord,
        MessageRecord,
        ModelRecord,
        ModerationEventRecord,
        TrainingRunRecord,
    )
    from appkit.store.store import Store, open_store

_EXPORTS = {
    "Store": "appkit.store.store",
    "open_store": "appkit.store.store",
    "upgrade": "appkit.store.db",
    "downgrade": "appkit.store.db",
    "current": "appkit.store.db",
    "head": "appkit.store.db",
    "mask_url": "appkit.store.db",
    "normalize_url": "appkit.store.db",
    "ConversationRecord": "appkit.store.records",
    "MessageRecord": "appkit.store.records",
    "FeedbackRecord": "appkit.store.records",
    "ModelRecord": "appkit.store.records",
    "TrainingRunRecord": "appkit.store.records",
    "ModerationEventRecord": "appkit.store.records",
    "DocumentRecord": "appkit.store.records",
    "ApiKeyRecord": "appkit.store.records",
    "hash_key": "appkit.store.keys",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'appkit.store' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
