"""API keys of `appkit serve` and the conversations each key created (methods of appkit.store.Store).

A key is ``ak-`` and 43 random URL-safe characters (256 bits), shown once when it is created.
Only its SHA-256 is stored: a random key that long needs no salt or slow hash (those protect
guessable passwords), and a fast hash lets every request look its key up by index.
"""

from __future__ import annotations

import hashlib
import secrets
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy import exists, select

from appkit.errors import NotFoundError, StorageError
from appkit.store.models import ApiKey, ApiKeyConversation, Conversation, utcnow
from appkit.store.records import ApiKeyRecord, to_record

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

KEY_PREFIX = "ak-"
SHOWN_PREFIX = 10  # characters of a key kept in clear to tell keys apart in `appkit keys list`


def hash_key(key: str) -> str:
    """The stored form of ``key``: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeysMixin:
    """API keys and conversation ownership; needs the ``_read``/``_write`` sessions of Store."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...

    def create_api_key(self, name: str, *, apps: list[str] | None = None,
                       rate_per_minute: int = 60) -> tuple[ApiKeyRecord, str]:
        """A new key: its record and the key itself (shown once, never stored).

        Raises:
            StorageError: a live key has this name, the name is empty or the rate is not positive.
        """
        name = name.strip()
        if not name:
            raise StorageError("a key needs a name (e.g. --name website).")
        if rate_per_minute < 1:
            raise StorageError(f"the rate limit must be at least 1 request a minute, not {rate_per_minute}.")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._write() as s:
            taken = s.scalar(select(exists().where(ApiKey.name == name, ApiKey.revoked_at.is_(None))))
            if taken:
                raise StorageError(f"a live key named {name!r} exists; revoke it first or pick another name.")
            entry = ApiKey(name=name, prefix=key[:SHOWN_PREFIX], key_hash=hash_key(key),
                           apps=sorted(set(apps)) if apps else None, rate_per_minute=rate_per_minute)
            s.add(entry)
            s.flush()
            return to_record(ApiKeyRecord, entry), key

    def list_api_keys(self, *, include_revoked: bool = True) -> list[ApiKeyRecord]:
        """Every key (oldest first), without the keys themselves."""
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self._read() as s:
            return [to_record(ApiKeyRecord, k) for k in s.scalars(query)]

    def revoke_api_key(self, name_or_id: str | int) -> ApiKeyRecord:
        """Revoke the live key with this name (or the key with this id); it stops working at once."""
        with self._write() as s:
            if isinstance(name_or_id, int) or str(name_or_id).isdigit():
                entry = s.get(ApiKey, int(name_or_id))
            else:
                entry = s.scalars(select(ApiKey).where(ApiKey.name == name_or_id, ApiKey.revoked_at.is_(None))).first()
            if entry is None:
                raise NotFoundError(f"no live API key named {name_or_id!r}; see `appkit keys list`.")
            if entry.revoked_at is None:
                entry.revoked_at = utcnow()
            s.flush()
            return to_record(ApiKeyRecord, entry)

    def find_api_key(self, key: str) -> ApiKeyRecord | None:
        """The live key whose hash matches ``key``; None if there is none (unknown or revoked)."""
        with self._read() as s:
            entry = s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key),
                                                   ApiKey.revoked_at.is_(None))).first()
            return to_record(ApiKeyRecord, entry) if entry is not None else None

    def has_api_keys(self) -> bool:
        """Whether any live key exists (then the server asks every request for one)."""
        with self._read() as s:
            return bool(s.scalar(select(exists().where(ApiKey.revoked_at.is_(None)))))

    def set_conversation_key(self, conversation_id: int, api_key_id: int) -> None:
        """Record that key ``api_key_id`` created the conversation."""
        with self._write() as s:
            if s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist.")
            s.add(ApiKeyConversation(conversation_id=conversation_id, api_key_id=api_key_id))

    def conversation_key(self, conversation_id: int) -> int | None:
        """The id of the key that created the conversation (None: not created through a key)."""
        with self._read() as s:
            row = s.get(ApiKeyConversation, conversation_id)
            return row.api_key_id if row is not None else None
