"""API keys in the store: hashed, named, revocable, scoped; conversations remember their key."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from appkit.errors import NotFoundError, StorageError
from appkit.store import hash_key, normalize_url


def test_a_key_is_stored_only_as_its_hash_and_found_by_it(store, db_url):
    record, key = store.create_api_key("website", apps=["support"], rate_per_minute=30)
    assert key.startswith("ak-") and len(key) > 40
    assert record.prefix == key[:10] and record.apps == ["support"] and record.rate_per_minute == 30
    engine = create_engine(normalize_url(db_url))
    try:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(text("SELECT * FROM api_keys"))]
    finally:
        engine.dispose()
    assert rows and not any(key in str(value) for row in rows for value in row)  # never the key itself
    assert any(hash_key(key) in row for row in rows)
    assert store.find_api_key(key).id == record.id
    assert store.find_api_key(key + "x") is None
    assert record.allows("support") and not record.allows("writer")


def test_revoked_keys_stop_matching_and_free_their_name(store):
    first, key = store.create_api_key("web")
    with pytest.raises(StorageError, match="live key named 'web'"):
        store.create_api_key("web")
    assert store.has_api_keys()
    revoked = store.revoke_api_key("web")
    assert revoked.revoked_at is not None and not revoked.active
    assert store.find_api_key(key) is None
    assert not store.has_api_keys()
    second, _ = store.create_api_key("web")  # the name can be used again
    assert second.id != first.id
    assert [k.name for k in store.list_api_keys(include_revoked=False)] == ["web"]
    assert len(store.list_api_keys()) == 2
    with pytest.raises(NotFoundError, match="keys list"):
        store.revoke_api_key("nope")


def test_bad_names_and_rates_are_refused(store):
    with pytest.raises(StorageError, match="name"):
        store.create_api_key("  ")
    with pytest.raises(StorageError, match="at least 1"):
        store.create_api_key("x", rate_per_minute=0)


def test_a_conversation_remembers_the_key_that_created_it(store):
    record, _ = store.create_api_key("web")
    conv = store.create_conversation("support")
    assert store.conversation_key(conv.id) is None
    store.set_conversation_key(conv.id, record.id)
    assert store.conversation_key(conv.id) == record.id
    store.delete_conversation(conv.id)
    with pytest.raises(NotFoundError):
        store.set_conversation_key(conv.id, record.id)
